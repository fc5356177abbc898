//! Who the client is behind a reverse proxy (pure). `X-Forwarded-For` is believed only
//! from configured proxies, and only up to the first address that is not one of them:
//! a client cannot pick its own address by sending the header itself.

use std::net::IpAddr;

/// The client's address: the peer, or — when the peer is a trusted proxy — the nearest
/// untrusted address in `X-Forwarded-For` (right to left).
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(chain) = forwarded_for else { return peer };
    let hops: Vec<IpAddr> = chain.split(',').filter_map(|h| h.trim().parse().ok()).collect();
    hops.iter().rev().find(|ip| !trusted.contains(ip)).or(hops.first()).copied().unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy = [ip("127.0.0.1")];
        // Direct client: its own header is ignored.
        assert_eq!(client_address(ip("203.0.113.9"), Some("10.0.0.1"), &proxy), ip("203.0.113.9"));
        // Through the proxy: the address it saw.
        assert_eq!(client_address(ip("127.0.0.1"), Some("203.0.113.9"), &proxy), ip("203.0.113.9"));
        // A client that sent a forged header first: the proxy appended the real one.
        assert_eq!(client_address(ip("127.0.0.1"), Some("10.9.9.9, 203.0.113.9"), &proxy), ip("203.0.113.9"));
        // Two proxies in a row, both trusted.
        let two = [ip("127.0.0.1"), ip("10.0.0.2")];
        assert_eq!(client_address(ip("127.0.0.1"), Some("198.51.100.7, 10.0.0.2"), &two), ip("198.51.100.7"));
        // No header, or garbage: the peer.
        assert_eq!(client_address(ip("127.0.0.1"), None, &proxy), ip("127.0.0.1"));
        assert_eq!(client_address(ip("127.0.0.1"), Some("junk"), &proxy), ip("127.0.0.1"));
        // No proxies configured: never believed.
        assert_eq!(client_address(ip("127.0.0.1"), Some("203.0.113.9"), &[]), ip("127.0.0.1"));
    }
}
