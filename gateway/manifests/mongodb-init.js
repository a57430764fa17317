// Run by the MongoDB image's entrypoint once, on an empty data directory: the services'
// own account, read/write on their database and nothing else (the root account stays
// for the operator).
const name = process.env.MONGODB_DB;
db.getSiblingDB(name).createUser({
  user: process.env.MONGODB_USER,
  pwd: process.env.MONGODB_PASSWORD,
  roles: [{ role: "readWrite", db: name }],
});
