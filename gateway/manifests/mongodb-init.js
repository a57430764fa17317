// The services' MongoDB accounts: one per service, each with a role of its own that names
// the collections its code uses and what it does in each (the built-in readWrite would
// give every service every collection of the database). The root account stays for the
// operator.
//
// Run by the MongoDB image's entrypoint once, on an empty data directory. Safe to run
// again (roles and users are updated in place, the pre-issue-15 shared account
// `mp3converter` is removed), e.g. on an existing volume:
//   kubectl -n mp3converter exec mongodb-0 -- sh -c \
//     'mongosh -u root -p "$MONGO_INITDB_ROOT_PASSWORD" --quiet /docker-entrypoint-initdb.d/mongodb-init.js'
//
// ROLES is JSON between the markers: the dev stack's MongoDB stand-in enforces the same
// roles (dev/mongo_server.py --roles), and tests/test_deploy_mongodb_roles.py checks them
// against the collections each service's code names. A service that starts using a new
// collection needs it here, or it is refused (in the dev stack's tests too).
const ROLES = /* roles:begin */ {
  "gateway": {
    "jobs": ["find", "insert", "update", "remove", "createIndex", "listIndexes"],
    "videos.files": ["find", "insert", "update", "remove", "createIndex", "listIndexes"],
    "videos.chunks": ["find", "insert", "update", "remove", "createIndex", "listIndexes"],
    "videos.uploading": ["find", "insert", "update", "remove", "createIndex", "listIndexes"],
    "tus_uploads": ["find", "insert", "update", "remove", "createIndex", "listIndexes"],
    "mp3s.files": ["find", "remove", "listIndexes"],
    "mp3s.chunks": ["find", "remove", "listIndexes"],
    "login_limit_counters": ["find", "insert", "update", "remove", "createIndex", "listIndexes"],
    "login_limit_windows": ["find", "insert", "update", "remove", "createIndex", "listIndexes"],
    "quota_counters": ["find", "insert", "update", "remove", "createIndex", "listIndexes"],
    "quota_windows": ["find", "insert", "update", "remove", "createIndex", "listIndexes"]
  },
  "converter": {
    "jobs": ["find", "update"],
    "videos.files": ["find", "remove"],
    "videos.chunks": ["find", "remove"],
    "mp3s.files": ["find", "insert", "remove", "createIndex", "listIndexes"],
    "mp3s.chunks": ["find", "insert", "remove", "createIndex", "listIndexes"]
  },
  "notification": {
    "jobs": ["find", "update"],
    "videos.files": ["find", "remove"],
    "videos.chunks": ["remove"]
  }
} /* roles:end */;

const name = process.env.MONGODB_DB;
const database = db.getSiblingDB(name);
for (const [service, collections] of Object.entries(ROLES)) {
  const privileges = Object.entries(collections).map(([collection, actions]) => ({
    resource: { db: name, collection },
    actions,
  }));
  if (database.getRole(service)) {
    database.updateRole(service, { privileges, roles: [] });
  } else {
    database.createRole({ role: service, privileges, roles: [] });
  }
  const upper = service.toUpperCase();
  const user = process.env[`MONGODB_${upper}_USER`];
  const pwd = process.env[`MONGODB_${upper}_PASSWORD`];
  const roles = [{ role: service, db: name }];
  if (database.getUser(user)) {
    database.updateUser(user, { pwd, roles });
  } else {
    database.createUser({ user, pwd, roles });
  }
}
if (database.getUser("mp3converter")) {
  database.dropUser("mp3converter");
}
