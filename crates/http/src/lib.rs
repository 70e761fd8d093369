//! The one HTTP client for every outbound call (platform APIs, the LLM, webhooks set up
//! from the command line): one connection pool per process, and no call without a bound.
//! A request may set a longer timeout of its own (Telegram's long poll, a slow LLM); none
//! runs without one.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How long a TCP and TLS connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take, unless the request sets its own.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The bounds and identity every client of the process has.
fn bounded() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
}

/// The process's client; cheap to clone (clones share the pool).
pub fn client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            bounded()
                .build()
                // With rustls and its compiled-in roots the builder has nothing that can
                // fail; the fallback only keeps this function total.
                .unwrap_or_default()
        })
        .clone()
}

/// A client for URLs a tenant chose (its own LLM server): it connects only to public
/// addresses, whatever a name resolves to at the moment of the call (so a name that
/// changes its answer after a check cannot reach the private network either), and follows
/// no redirect, which could point anywhere. An IP written in the URL itself is checked by
/// [`refuse_private`], since it is never resolved.
pub fn public_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            bounded()
                .redirect(reqwest::redirect::Policy::none())
                // Through a proxy the proxy would resolve the host, past the filter below.
                .no_proxy()
                .dns_resolver(Arc::new(PublicOnly))
                .build()
                .unwrap_or_default()
        })
        .clone()
}

/// Whether `ip` is on the public internet: not loopback, private, link-local, shared
/// (carrier-grade NAT), unspecified, broadcast or documentation space, in IPv4 or IPv6
/// (an IPv4 address inside IPv6 is judged as IPv4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || (a == 192 && b == 0 && c == 0))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4) are
            // judged by it: they reach it.
            let [.., a, b, c, d] = v6.octets();
            let embedded = std::net::Ipv4Addr::new(a, b, c, d);
            if v6.to_ipv4_mapped().is_some()
                || (s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified())
                || (s[0] == 0x64 && s[1] == 0xff9b)
            {
                return is_public(IpAddr::V4(embedded));
            }
            if s[0] == 0x2002 {
                let [_, _, a, b, c, d, ..] = v6.octets();
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6.is_multicast()
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

/// Refuses a URL that is not http(s) or that names a non-public IP address itself.
pub fn refuse_private(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?} is not an http or https URL"));
    }
    let literal = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
            return Err("the URL points to this machine".into());
        }
        Some(url::Host::Domain(_)) => None,
        None => return Err(format!("{url:?} has no host")),
    };
    match literal {
        Some(ip) if !is_public(ip) => Err(format!("the URL points to a private address ({ip})")),
        _ => Ok(()),
    }
}

/// Resolves names as the system does and keeps only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{} has no public address", name.as_str()).into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A server that accepts and never answers: the client gives up at its request timeout
    /// (here a request's own, shorter one), not never.
    #[tokio::test]
    async fn a_silent_server_is_given_up_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let err = client()
            .get(format!("http://{addr}/"))
            .timeout(Duration::from_millis(300))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
    }

    #[test]
    fn private_and_local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:0a00:0001::1",
            "fec0::1",
            "2001:db8::1",
            "224.0.0.1",
            "240.0.0.1",
            "198.18.0.1",
            "192.0.0.8",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "104.18.6.192", "2606:4700::6810:1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        assert!(refuse_private("http://169.254.169.254/latest/meta-data").is_err());
        assert!(refuse_private("http://[::1]:8080/v1").is_err());
        assert!(refuse_private("http://localhost:11434").is_err());
        assert!(refuse_private("file:///etc/passwd").is_err());
        assert!(refuse_private("https://api.openai.com").is_ok());
    }

    /// A name that resolves only to this machine is not connected to.
    #[tokio::test]
    async fn a_name_for_a_private_address_is_not_connected_to() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = public_client()
            .get(format!("http://localhost:{port}/"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap_err();
        let chain = format!("{err:?}");
        assert!(chain.contains("no public address"), "{chain}");
    }
}
