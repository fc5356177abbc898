//! Accounts: argon2id password hashes, session tokens (random, stored hashed), CSRF
//! tokens, and the operations the CLI and the login page share: add a user, check a
//! login, start and end a session, change a password.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::auth::{Role, check_email, check_password};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::users;

/// An argon2id hash (PHC string) of `password`. Slow on purpose: call off the async threads.
/// The server hashes on its `HashPool` instead; this is for one-off CLI use.
pub fn hash_password(password: &str) -> Result<String> {
    crate::hashing::hash_in(&mut Vec::new(), password)
}

/// Whether `password` matches `hash` (one-off; the server verifies on its `HashPool`).
pub fn verify_password(password: &str, hash: &str) -> bool {
    crate::hashing::verify_in(&mut Vec::new(), password, hash)
}

/// Compares two secrets in constant time.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// What is stored for a session token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A readable generated password (for `user add` without one): 20 characters.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut b = [0u8; 20];
    rand::rng().fill_bytes(&mut b);
    b.iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect()
}

/// Adds a user; `must_change` asks for a new password at first login.
pub async fn add_user(
    store: &Store,
    email: &str,
    role: Role,
    password: &str,
    must_change: bool,
    actor: &str,
) -> Result<i64> {
    let email = email.trim().to_string();
    check_email(&email).map_err(Error::Invalid)?;
    check_password(password, &email).map_err(Error::Invalid)?;
    let pw = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| Error::internal("hash task", e))??;
    let (now, actor) = (crate::domain::now_ms(), actor.to_string());
    store
        .write(move |c| {
            let id = users::create(c, &email, role, &hash, must_change, now)?;
            crate::store::settings::audit(
                c,
                now,
                &actor,
                "user.add",
                &email,
                &format!("{{\"role\":\"{}\"}}", role.as_str()),
            )?;
            Ok(id)
        })
        .await
}

/// The user whose email and password these are (a missing user costs as much time as a
/// wrong password, so timing does not reveal which emails exist).
/// Verifies on `pool`: `Unavailable` when it stays busy.
pub async fn check_login(
    store: &Store,
    pool: &crate::hashing::HashPool,
    email: &str,
    password: &str,
) -> Result<Option<users::User>> {
    let e = email.trim().to_string();
    let found = store.read(move |c| users::by_email(c, &e)).await?;
    let pw = password.to_string();
    match found {
        Some((user, hash)) => Ok(pool.verify(pw, hash).await?.then_some(user)),
        None => {
            let _ = pool.verify(pw, DUMMY_HASH.to_string()).await?;
            Ok(None)
        }
    }
}

/// A valid argon2id hash of a random password, verified against when the user is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0/qXCIvTuNtJl2eS8D6EK+mdJcGv7oN3jO4mMNzs5w0";

/// Starts a session: (cookie token, CSRF token).
pub async fn start_session(store: &Store, user_id: i64) -> Result<(String, String)> {
    let (token, csrf) = (crate::config::random_token(), crate::config::random_token());
    let (h, c, now) = (token_hash(&token), csrf.clone(), crate::domain::now_ms());
    store
        .write(move |conn| users::create_session(conn, &h, user_id, &c, now))
        .await?;
    Ok((token, csrf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_password("x", "not a hash"));
        assert_eq!(token_hash("a").len(), 64);
        assert_eq!(generate_password().len(), 20);
    }
}
