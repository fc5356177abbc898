//! Pure types and rules of the product: what a message is, how delivery states move,
//! retry timing. Nothing here does I/O.

pub mod address;
pub mod auth;
pub mod backoff;
pub mod budget;
pub mod calendar;
pub mod canned;
pub mod centroid;
pub mod cert_validity;
pub mod circuit;
pub mod delivery;
pub mod event;
pub mod guard;
pub mod guard_context;
pub mod health;
pub mod injection;
pub mod knn;
pub mod labels;
pub mod ledger;
pub mod media;
pub mod message;
pub mod outbound;
pub mod owner;
pub mod presence;
pub mod proxy;
pub mod quant_index;
pub mod rate;
pub mod router;
pub mod sentiment;
pub mod settings;
pub mod snippet;
pub mod snooze;
pub mod soft_launch;
pub mod tool_url;
pub mod webhook;
pub mod window;

/// Cosine similarity of two unit vectors (their dot product).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `v` scaled to unit length (a zero vector stays zero).
pub fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n == 0.0 {
        v.to_vec()
    } else {
        v.iter().map(|x| x / n).collect()
    }
}

/// Milliseconds since the Unix epoch, the one time unit stored by frontdesk.
pub type UnixMillis = i64;

/// The current wall-clock time in Unix milliseconds.
pub fn now_ms() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
