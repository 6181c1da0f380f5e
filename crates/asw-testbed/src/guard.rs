//! Owners of what tests make on the shared broker and database: RabbitMQ vhosts and PostgreSQL
//! schemas, deleted when dropped, so that a test that fails (panics) still leaves no `aswt-*`
//! vhost or `aswt_*` schema behind to slow the shared services down.

use asw_amqp::Management;

/// Vhosts (and the testbed's back-office users, which belong to the broker, not to a vhost)
/// deleted when dropped (unless [`kept`](Vhosts::keep)). Deleting a vhost that is not
/// there is harmless, so a guard may outlive a clean-up that already deleted them.
#[derive(Debug)]
pub struct Vhosts {
    management: Management,
    names: Vec<String>,
    users: Vec<String>,
}

impl Vhosts {
    /// The guard of `names`, deleted through `management`.
    pub fn new(management: Management, names: Vec<String>) -> Vhosts {
        Vhosts {
            management,
            names,
            users: Vec::new(),
        }
    }

    /// The vhosts of every member state in `options`, and its ministries' users.
    pub fn of(options: &crate::TestbedOptions) -> Vhosts {
        let mut vhosts = Vhosts::new(
            Management::with_tls(
                &options.management_url,
                &options.admin.0,
                &options.admin.1,
                &options.tls.load("testbed").unwrap_or_default(),
            ),
            options
                .countries
                .iter()
                .map(|&s| options.vhost(s))
                .collect(),
        );
        vhosts.users = options.ministry_users();
        vhosts
    }

    /// Leaves the vhosts in place when dropped.
    pub fn keep(&mut self) {
        self.names.clear();
        self.users.clear();
    }

    /// Deletes them now (a blocking HTTP call for each); the guard then holds none.
    pub fn delete(&mut self) {
        for vhost in std::mem::take(&mut self.names) {
            if let Err(e) = self.management.delete_vhost(&vhost) {
                eprintln!("could not delete the test vhost {vhost}: {e}");
            }
        }
        for user in std::mem::take(&mut self.users) {
            if let Err(e) = self.management.delete_user(&user) {
                eprintln!("could not delete the test user {user}: {e}");
            }
        }
    }
}

impl Drop for Vhosts {
    fn drop(&mut self) {
        self.delete();
    }
}

/// A PostgreSQL schema of the test's own on the local server, dropped with everything in it
/// when dropped.
#[derive(Debug)]
pub struct PgSchema {
    name: String,
}

impl PgSchema {
    /// Creates `aswt_<random>`; panics if PostgreSQL does not take it (for tests).
    pub fn new() -> PgSchema {
        let name = format!("aswt_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        if let Err(e) = psql(&format!("CREATE SCHEMA {name}")) {
            panic!("{e}");
        }
        PgSchema { name }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A journal URL whose connections use this schema.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:5432/postgres?options=-csearch_path%3D{}",
            self.name
        )
    }
}

impl Default for PgSchema {
    fn default() -> PgSchema {
        PgSchema::new()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // Never a panic here: this may run while a failed test unwinds.
        if let Err(e) = psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)) {
            eprintln!("could not drop the test schema: {e}");
        }
    }
}

/// Runs `psql` on the local server's `postgres` database and returns what it printed.
pub fn psql(sql: &str) -> Result<String, String> {
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"])
        .args(["-v", "ON_ERROR_STOP=1", "-Atqc", sql])
        .output()
        .map_err(|e| {
            format!("psql (PostgreSQL runs on 127.0.0.1; deploy/setup.sh starts it): {e}")
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{sql}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}
