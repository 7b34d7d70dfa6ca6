//! The client's address for rate limits, walking `X-Forwarded-For` back through trusted
//! proxies only.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::state::AppState;

/// The client's address (for rate limits): the peer, when the server was started with
/// connect info — or, when the peer is one of the trusted proxies, the client that the proxies'
/// `X-Forwarded-For` names (see [`client_ip`]).
pub(crate) struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        Ok(ClientAddr(client_ip(
            peer,
            forwarded,
            &state.settings().trusted_proxies,
        )))
    }
}

/// Who the client is behind trusted proxies. Each proxy appends the address it received the
/// request from to `X-Forwarded-For`, so the list is read from the right: trusted proxies are
/// skipped, and the first address that is not one is the client — everything left of it was
/// written by the client itself and proves nothing. A peer that is not a trusted proxy is
/// the client (its header is ignored: anyone can send one); an unparsable entry stops the
/// walk at the last trusted hop.
pub(crate) fn client_ip<'a>(
    peer: Option<IpAddr>,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let mut client = peer?;
    if !is_trusted(&client) {
        return Some(client);
    }
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod client_ip_tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let none: Vec<ipnet::IpNet> = Vec::new();
        // No trusted proxies: the header is the client's own word and is ignored.
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), ["198.51.100.1"].into_iter(), &none),
            Some(ip("203.0.113.9"))
        );
        // A peer that is not trusted cannot pick another client's bucket either.
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(
                Some(ip("203.0.113.9")),
                ["198.51.100.1"].into_iter(),
                &trusted
            ),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(client_ip(None, std::iter::empty(), &trusted), None);
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "::1/128"]);
        let peer = Some(ip("10.0.0.2"));
        // The client forged a leftmost entry; the proxies appended the real hops.
        assert_eq!(
            client_ip(
                peer,
                ["1.2.3.4, 198.51.100.7, 10.0.0.5"].into_iter(),
                &trusted
            ),
            Some(ip("198.51.100.7"))
        );
        // Several header lines count as one list, in order.
        assert_eq!(
            client_ip(
                peer,
                ["1.2.3.4", "198.51.100.8 , 10.1.1.1"].into_iter(),
                &trusted
            ),
            Some(ip("198.51.100.8"))
        );
        // No header: the proxy itself is all we know.
        assert_eq!(client_ip(peer, std::iter::empty(), &trusted), peer);
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            client_ip(peer, ["198.51.100.9, junk, 10.0.0.9"].into_iter(), &trusted),
            Some(ip("10.0.0.9"))
        );
        assert_eq!(
            client_ip(Some(ip("::1")), ["2001:db8::7"].into_iter(), &trusted),
            Some(ip("2001:db8::7"))
        );
    }
}
