//! Who the client is, for the public rate limiter. The socket peer, unless the
//! peer is a reverse proxy we were told to trust (`--trusted-proxy CIDR`): then
//! the client is read from the proxy's `Forwarded: for=` (RFC 7239) or, without
//! one, `X-Forwarded-For`, taking the right-most address that is not itself a
//! trusted proxy. Addresses to the left of that one were written by the client
//! and prove nothing; headers from a peer we do not trust are ignored outright,
//! so nobody escapes their bucket by sending one.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::error::{Error, Result};

/// The reverse proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// No proxy is trusted: the client is always the socket peer.
    pub fn none() -> TrustedProxies {
        TrustedProxies(Vec::new())
    }

    /// Parses CIDRs (`10.0.0.0/8`, `2001:db8::/32`) or single addresses
    /// (`192.0.2.7`, a /32 or /128); the error names the bad one.
    pub fn parse<S: AsRef<str>>(cidrs: &[S]) -> Result<TrustedProxies> {
        let mut nets = Vec::with_capacity(cidrs.len());
        for cidr in cidrs {
            let text = cidr.as_ref().trim();
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| Error::InvalidConfig {
                    setting: "trusted_proxy",
                    reason: format!("`{text}` is not a CIDR (like 10.0.0.0/8) or an IP address"),
                })?;
            nets.push(net.trunc());
        }
        Ok(TrustedProxies(nets))
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, given the request's headers.
    pub(crate) fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let Some(hops) = forwarded_for(headers).or_else(|| x_forwarded_for(headers)) else {
            return peer;
        };
        // From the nearest hop outwards: every trusted proxy passes us on to the
        // address it saw; the first one that is not a trusted proxy is the
        // client. A hop we cannot read ("unknown", an obfuscated name) stops the
        // walk at the last proxy we trust, which then stands for its clients.
        let mut nearest = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) if self.contains(*ip) => nearest = *ip,
                Some(ip) => return *ip,
                None => return nearest,
            }
        }
        nearest
    }
}

/// The `for=` of every element of every `Forwarded` header, in order; `None`
/// when there is no such header. An element without `for=` counts as a hop we
/// cannot read.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut values = headers.get_all("forwarded").iter().peekable();
    values.peek()?;
    let mut hops = Vec::new();
    for value in values {
        let Ok(text) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in text.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim())
            });
            hops.push(node.and_then(parse_node));
        }
    }
    Some(hops)
}

/// Every address of every `X-Forwarded-For` header, in order; `None` when there
/// is no such header.
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut values = headers.get_all("x-forwarded-for").iter().peekable();
    values.peek()?;
    let mut hops = Vec::new();
    for value in values {
        match value.to_str() {
            Ok(text) => hops.extend(text.split(',').map(|hop| parse_node(hop.trim()))),
            Err(_) => hops.push(None),
        }
    }
    Some(hops)
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711`, any of them in double quotes.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    let bracketed = text.strip_prefix('[')?.split(']').next()?;
    bracketed.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn proxies(cidrs: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(cidrs).expect("CIDRs")
    }

    #[test]
    fn cidrs_and_single_addresses_parse_for_v4_and_v6() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"]);
        assert!(trusted.contains(ip("10.200.3.4")));
        assert!(trusted.contains(ip("192.0.2.7")));
        assert!(!trusted.contains(ip("192.0.2.8")));
        assert!(trusted.contains(ip("2001:db8:ffff::1")));
        assert!(trusted.contains(ip("::1")));
        assert!(!trusted.contains(ip("2001:db9::1")));
        // A v4 peer seen through a dual-stack socket is still that v4 address.
        assert!(trusted.contains(ip("::ffff:10.1.2.3")));
    }

    #[test]
    fn a_bad_cidr_is_named() {
        let err = TrustedProxies::parse(&["10.0.0.0/33"]).expect_err("bad prefix");
        assert!(err.to_string().contains("trusted_proxy"), "{err}");
        assert!(err.to_string().contains("10.0.0.0/33"), "{err}");
        assert!(TrustedProxies::parse(&["proxy.example"]).is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let spoofed = headers(&[
            ("x-forwarded-for", "198.51.100.9"),
            ("forwarded", "for=198.51.100.10"),
        ]);
        assert_eq!(
            trusted.client_ip(ip("203.0.113.5"), &spoofed),
            ip("203.0.113.5")
        );
        assert_eq!(
            TrustedProxies::none().client_ip(ip("10.0.0.1"), &spoofed),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // The client wrote "1.2.3.4" itself; the proxy appended what it saw.
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.9, 10.0.0.2")]);
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &chain),
            ip("198.51.100.9")
        );
        // Several header lines are one list.
        let split = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "198.51.100.9"),
        ]);
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &split),
            ip("198.51.100.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        // Only proxies in the chain: the farthest of them.
        let inner = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.2")]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &inner), ip("10.9.9.9"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_reads_every_rfc_7239_form() {
        let trusted = proxies(&["10.0.0.0/8", "2001:db8:aaaa::/48"]);
        let both = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            (
                "forwarded",
                "for=192.0.2.60;proto=http;by=203.0.113.43, For=\"[2001:db8:cafe::17]:4711\"",
            ),
        ]);
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &both),
            ip("2001:db8:cafe::17")
        );
        let with_port = headers(&[("forwarded", "for=\"192.0.2.60:8080\", for=10.0.0.3")]);
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &with_port),
            ip("192.0.2.60")
        );
        let v6_proxy = headers(&[("forwarded", "for=192.0.2.61, for=\"[2001:db8:aaaa::2]\"")]);
        assert_eq!(
            trusted.client_ip(ip("2001:db8:aaaa::1"), &v6_proxy),
            ip("192.0.2.61")
        );
    }

    #[test]
    fn an_unreadable_hop_stops_at_the_nearest_trusted_proxy() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let hidden = headers(&[("forwarded", "for=192.0.2.1, for=unknown, for=10.0.0.2")]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &hidden), ip("10.0.0.2"));
        let junk = headers(&[("x-forwarded-for", "192.0.2.1, not-an-ip")]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &junk), ip("10.0.0.1"));
    }
}
