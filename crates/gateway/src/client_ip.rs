//! Who is asking: the peer address, or behind trusted reverse proxies the address they
//! report in `X-Forwarded-For`. Only proxies the configuration names are believed, so a
//! client cannot pick its own address to slip past a per-address limit.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::{ApiError, AppState};

/// The networks whose `X-Forwarded-For` is believed (`server.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Each entry an address (`10.0.0.5`) or a network (`10.0.0.0/8`).
    pub fn parse(list: &[String]) -> Result<Self, String> {
        list.iter()
            .map(|s| {
                let s = s.trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("server.trusted_proxies: {s:?} is not an address or a network")
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the
    /// nearest address in `X-Forwarded-For` (read from the right, as each proxy appends)
    /// that is not a trusted proxy itself.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        // An IPv4 peer of a gateway listening on `::` shows as `::ffff:a.b.c.d`.
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        let mut nearest = peer;
        for hop in hops.iter().rev() {
            // Something that is not an address was not written by a proxy of ours: the
            // last address a trusted proxy vouched for is as far as we believe.
            let Some(ip) = hop_address(hop) else {
                return nearest;
            };
            if !self.trusts(ip) {
                return ip;
            }
            nearest = ip;
        }
        nearest
    }
}

/// An address as proxies write it in `X-Forwarded-For`: bare, with a port
/// (`1.2.3.4:5678`), or in brackets (`[2001:db8::1]:443`).
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop.parse::<IpAddr>().ok().or_else(|| {
        hop.parse::<std::net::SocketAddr>()
            .ok()
            .map(|s| s.ip())
            .or_else(|| hop.strip_prefix('[')?.split(']').next()?.parse().ok())
    })?;
    Some(ip.to_canonical())
}

/// What a request's per-address limits count against: the client's address as
/// `TrustedProxies::client` tells it, or for IPv6 its /64 network. A /64 is what one
/// subscriber is given, so one client can pick any of its 2^64 addresses; counting them
/// one by one would be no limit at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitKey(pub IpAddr);

impl LimitKey {
    pub fn of(client: IpAddr) -> Self {
        match client {
            IpAddr::V4(_) => Self(client),
            IpAddr::V6(v6) => Self(IpAddr::V6(std::net::Ipv6Addr::from_bits(
                v6.to_bits() & (u128::MAX << 64),
            ))),
        }
    }
}

impl std::fmt::Display for LimitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl FromRequestParts<AppState> for LimitKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or(ApiError::Internal)?;
        Ok(Self::of(s.proxies.client(peer, &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_trusted_proxies_are_believed() {
        let none = TrustedProxies::default();
        let spoofed = headers(&["203.0.113.9"]);
        assert_eq!(
            none.client(ip("198.51.100.7"), &spoofed),
            ip("198.51.100.7")
        );

        let lb = TrustedProxies::parse(&["10.0.0.0/8".into(), "127.0.0.1".into()]).unwrap();
        // A client that writes its own header behind our proxy gets its real address.
        let h = headers(&["203.0.113.9, 198.51.100.7", "10.1.1.1"]);
        assert_eq!(lb.client(ip("127.0.0.1"), &h), ip("198.51.100.7"));
        // A peer we do not trust is the client, whatever it says.
        assert_eq!(lb.client(ip("192.0.2.1"), &h), ip("192.0.2.1"));
        // Garbage stops the walk at the last proxy that vouched.
        let h = headers(&["not-an-ip, 10.2.2.2"]);
        assert_eq!(lb.client(ip("127.0.0.1"), &h), ip("10.2.2.2"));
        // Ports, brackets and IPv4 peers seen over IPv6 are understood.
        let h = headers(&["198.51.100.7:5678"]);
        assert_eq!(lb.client(ip("::ffff:127.0.0.1"), &h), ip("198.51.100.7"));
        let h = headers(&["[2001:db8::7]:443"]);
        assert_eq!(lb.client(ip("127.0.0.1"), &h), ip("2001:db8::7"));
        // No header: the proxy itself.
        assert_eq!(
            lb.client(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(
            LimitKey::of(ip("2001:db8:1:2:aaaa::1")),
            LimitKey::of(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            LimitKey::of(ip("2001:db8:1:2::1")),
            LimitKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(LimitKey::of(ip("203.0.113.7")).0, ip("203.0.113.7"));
        assert_ne!(
            LimitKey::of(ip("203.0.113.7")),
            LimitKey::of(ip("203.0.113.8"))
        );
    }
}
