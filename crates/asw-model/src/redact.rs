//! The one way a connection URL is shown in logs, errors and `Debug` output: without its
//! password, however the password is written.

/// `url` without any password: `amqp://user:secret@host/v` is shown `amqp://user@host/v`, also
/// when the password holds `@`, `:` or `/` unencoded (the user information ends at the last `@`
/// before the query); a `password=` query parameter is dropped; a `key=value` connection string
/// (PostgreSQL's) that holds a password is not shown at all.
pub fn url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        if url.contains("password") {
            // Quoting rules make a `key=value` string hard to cut safely; show none of it.
            return "a connection string (not shown: it holds a password)".to_owned();
        }
        return url.to_owned();
    };
    let query_at = rest.find(['?', '#']).unwrap_or(rest.len());
    let (before_query, query) = rest.split_at(query_at);
    let without_user = match before_query.rfind('@') {
        Some(at) => {
            let userinfo = &before_query[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{user}@{}", &before_query[at + 1..])
        }
        None => before_query.to_owned(),
    };
    let query = match query.strip_prefix('?') {
        Some(pairs) => {
            let (pairs, fragment) = pairs
                .split_once('#')
                .map_or((pairs, None), |(p, f)| (p, Some(f)));
            let kept: Vec<&str> = pairs
                .split('&')
                .filter(|pair| !pair.to_ascii_lowercase().starts_with("password="))
                .collect();
            let mut q = if kept.is_empty() {
                String::new()
            } else {
                format!("?{}", kept.join("&"))
            };
            if let Some(f) = fragment {
                q.push('#');
                q.push_str(f);
            }
            q
        }
        None => query.to_owned(),
    };
    format!("{scheme}://{without_user}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_password_is_ever_shown() {
        for (given, shown) in [
            ("amqp://u:pw@h/v", "amqp://u@h/v"),
            ("amqp://h/v", "amqp://h/v"),
            ("amqp://u:pw@h:notaport/v", "amqp://u@h:notaport/v"),
            (
                "amqps://partner-VN:p@ss:w/rd@th.example:5671/asw-th",
                "amqps://partner-VN@th.example:5671/asw-th",
            ),
            (
                "postgres://hub:s3cr:t@db:5432/journal?sslmode=verify-full",
                "postgres://hub@db:5432/journal?sslmode=verify-full",
            ),
            (
                "postgres://db/journal?user=hub&password=x&sslmode=require",
                "postgres://db/journal?user=hub&sslmode=require",
            ),
            ("postgres://db/journal?password=x", "postgres://db/journal"),
            ("mysql://root:pw@db/x", "mysql://root@db/x"),
            (
                "host=db user=hub dbname=journal",
                "host=db user=hub dbname=journal",
            ),
            (
                "host=db password='a b' user=hub",
                "a connection string (not shown: it holds a password)",
            ),
            (
                "http://guest:guest@127.0.0.1:15672",
                "http://guest@127.0.0.1:15672",
            ),
        ] {
            assert_eq!(url(given), shown, "{given}");
            for secret in ["pw", "p@ss", "s3cr", "password=x", "'a b'"] {
                assert!(!url(given).contains(secret), "{given} shows {secret}");
            }
        }
    }
}
