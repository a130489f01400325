declare module "*.ipynb" {
  const notebook: any;
  export default notebook;
}
