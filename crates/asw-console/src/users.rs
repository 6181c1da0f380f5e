//! The console's accounts file: one line per user, `name role hash`, the hash an argon2id PHC
//! string (`$argon2id$v=19$...`). Written by `aswctl console user add|remove`, read by the hub
//! at each login; a password is never stored or logged.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};

/// The shortest password taken.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Read, replay, discard.
    Operator,
}

impl Role {
    /// `viewer` or `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    /// Whether the role may replay and discard.
    pub fn may_act(self) -> bool {
        self == Role::Operator
    }
}

impl FromStr for Role {
    type Err = UsersError;

    fn from_str(s: &str) -> Result<Role, UsersError> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            other => Err(UsersError::Invalid(format!(
                "{other:?} is not a role (viewer, operator)"
            ))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// The argon2id hash of the password (PHC string).
    hash: String,
}

impl User {
    /// Whether `password` is this user's. Takes the time argon2id takes, match or not.
    pub fn verify(&self, password: &str) -> bool {
        PasswordHash::new(&self.hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    }
}

/// The accounts file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// Reading or writing the file failed.
    #[error("accounts file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file or a request is not valid.
    #[error("{0}")]
    Invalid(String),
}

/// The accounts, as in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    users: Vec<User>,
}

/// Whether `name` may be a login name: 1 to 64 of letters, digits, `.`, `_`, `-`, `@`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

impl Users {
    /// Reads `path`; a missing file is no accounts.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Users::default()),
            Err(source) => {
                return Err(UsersError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut users = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad =
                |what: &str| UsersError::Invalid(format!("{}:{}: {what}", path.display(), n + 1));
            let mut fields = line.split_whitespace();
            let (Some(name), Some(role), Some(hash), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(bad("expected `name role hash`"));
            };
            let role: Role = role
                .parse()
                .map_err(|_| bad("the role is not viewer or operator"))?;
            let parsed =
                PasswordHash::new(hash).map_err(|_| bad("the hash is not a PHC string"))?;
            if parsed.algorithm != Algorithm::Argon2id.ident() {
                return Err(bad("the hash is not argon2id"));
            }
            if !valid_name(name) {
                return Err(bad("the name is not a valid login name"));
            }
            users.push(User {
                name: name.to_owned(),
                role,
                hash: hash.to_owned(),
            });
        }
        Ok(Users { users })
    }

    /// Writes the accounts to `path` (through a temporary file, then renamed; mode 0600).
    pub fn save(&self, path: &Path) -> Result<(), UsersError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| UsersError::Io {
            path: path.to_owned(),
            source,
        };
        let mut text = String::from("# aswhub console accounts: name role argon2id-hash\n");
        for u in &self.users {
            text.push_str(&format!("{} {} {}\n", u.name, u.role, u.hash));
        }
        let temporary = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temporary, path).map_err(io)
    }

    /// Every account, in file order.
    pub fn all(&self) -> &[User] {
        &self.users
    }

    /// The account `name`.
    pub fn find(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Adds `name` with `role` and the argon2id hash of `password`; refused if the name is
    /// taken or invalid, or the password too short.
    pub fn add(&mut self, name: &str, role: Role, password: &str) -> Result<(), UsersError> {
        if !valid_name(name) {
            return Err(UsersError::Invalid(format!(
                "{name:?} is not a login name (1 to 64 letters, digits, . _ - @)"
            )));
        }
        if self.find(name).is_some() {
            return Err(UsersError::Invalid(format!(
                "user {name} exists; remove it first"
            )));
        }
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(UsersError::Invalid(format!(
                "the password has fewer than {MIN_PASSWORD_CHARS} characters"
            )));
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| UsersError::Invalid(format!("cannot hash the password: {e}")))?
            .to_string();
        self.users.push(User {
            name: name.to_owned(),
            role,
            hash,
        });
        Ok(())
    }

    /// Removes `name`; whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.users.len();
        self.users.retain(|u| u.name != name);
        self.users.len() < before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_stored_as_argon2id_hashes_and_verified() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("users");
        let mut users = Users::load(&path).expect("missing is empty");
        users
            .add("ana", Role::Operator, "correct horse battery")
            .expect("add");
        users
            .add("bo", Role::Viewer, "another long secret")
            .expect("add");
        assert!(
            users
                .add("ana", Role::Viewer, "yet another secret")
                .is_err()
        );
        assert!(
            users
                .add("bad name", Role::Viewer, "long enough secret")
                .is_err()
        );
        assert!(users.add("cy", Role::Viewer, "short").is_err());
        users.save(&path).expect("save");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("correct horse"), "never plain");
        assert!(text.contains(" operator $argon2id$v=19$"), "{text}");
        let loaded = Users::load(&path).expect("load");
        assert_eq!(loaded, users);
        let ana = loaded.find("ana").expect("ana");
        assert!(ana.verify("correct horse battery"));
        assert!(!ana.verify("correct horse batter"));
        assert_eq!(loaded.find("bo").map(|u| u.role), Some(Role::Viewer));
        let mut loaded = loaded;
        assert!(loaded.remove("bo"));
        assert!(!loaded.remove("bo"));
        std::fs::write(&path, "ana operator plain-password\n").expect("write");
        assert!(Users::load(&path).is_err(), "a plain password is refused");
    }
}
