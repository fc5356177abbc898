//! Who the client is behind a reverse proxy (pure). `X-Forwarded-For` is believed only
//! from configured proxies, and only up to the first hop that is not one of them: a
//! client cannot pick its own address by sending the header itself, whether its forged
//! value comes first in the proxy's line or in a header line of its own.

use std::net::{IpAddr, SocketAddr};

/// The client's address: the peer, or — when the peer is a trusted proxy — the nearest
/// untrusted hop of `X-Forwarded-For`, reading right to left over every header line in
/// the order received (proxies append, either to the last line or as a new line). A hop
/// that is not an address stops the walk: what lies left of it cannot be trusted, so
/// the last trusted hop is the answer.
pub fn client_address(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut nearest = peer;
    for hop in forwarded_for
        .iter()
        .rev()
        .flat_map(|line| line.rsplit(','))
        .map(str::trim)
    {
        if hop.is_empty() {
            continue;
        }
        let Some(ip) = parse_hop(hop) else { return nearest };
        if !trusted.contains(&ip) {
            return ip;
        }
        nearest = ip;
    }
    nearest
}

/// A hop as proxies write it: `203.0.113.9`, `2001:db8::1`, `203.0.113.9:4711` or
/// `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
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
        assert_eq!(
            client_address(ip("203.0.113.9"), &["10.0.0.1"], &proxy),
            ip("203.0.113.9")
        );
        // Through the proxy: the address it saw.
        assert_eq!(
            client_address(ip("127.0.0.1"), &["203.0.113.9"], &proxy),
            ip("203.0.113.9")
        );
        // A client that sent a forged header first: the proxy appended the real one.
        assert_eq!(
            client_address(ip("127.0.0.1"), &["10.9.9.9, 203.0.113.9"], &proxy),
            ip("203.0.113.9")
        );
        // Two proxies in a row, both trusted.
        let two = [ip("127.0.0.1"), ip("10.0.0.2")];
        assert_eq!(
            client_address(ip("127.0.0.1"), &["198.51.100.7, 10.0.0.2"], &two),
            ip("198.51.100.7")
        );
        // No header, or garbage: the peer.
        assert_eq!(client_address(ip("127.0.0.1"), &[], &proxy), ip("127.0.0.1"));
        assert_eq!(client_address(ip("127.0.0.1"), &["junk"], &proxy), ip("127.0.0.1"));
        // No proxies configured: never believed.
        assert_eq!(client_address(ip("127.0.0.1"), &["203.0.113.9"], &[]), ip("127.0.0.1"));
    }

    #[test]
    fn every_header_line_counts_and_the_right_most_untrusted_hop_wins() {
        let proxy = [ip("127.0.0.1")];
        let two = [ip("127.0.0.1"), ip("10.0.0.2")];
        let cases: &[(&[&str], &[IpAddr], &str)] = &[
            // The client's own line first, the proxy's appended as a second line.
            (&["10.9.9.9", "203.0.113.9"], &proxy, "203.0.113.9"),
            (&["10.9.9.9, 10.8.8.8", "203.0.113.9"], &proxy, "203.0.113.9"),
            // Lists across lines, a trusted hop in between.
            (&["198.51.100.7", "10.0.0.2"], &two, "198.51.100.7"),
            (&["10.9.9.9", "198.51.100.7, 10.0.0.2"], &two, "198.51.100.7"),
            // Empty hops are skipped, ports and IPv6 are understood.
            (&["10.9.9.9", " , 203.0.113.9:4711"], &proxy, "203.0.113.9"),
            (&["[2001:db8::1]:80"], &proxy, "2001:db8::1"),
            (&["2001:db8::2"], &proxy, "2001:db8::2"),
            // Garbage right of the forged value stops the walk at the last trusted hop.
            (&["203.0.113.50", "unknown"], &proxy, "127.0.0.1"),
            (&["203.0.113.50", "junk, 10.0.0.2"], &two, "10.0.0.2"),
            // Only trusted hops: the left-most of them.
            (&["10.0.0.2"], &two, "10.0.0.2"),
        ];
        for (lines, trusted, want) in cases {
            assert_eq!(client_address(ip("127.0.0.1"), lines, trusted), ip(want), "{lines:?}");
        }
    }
}
