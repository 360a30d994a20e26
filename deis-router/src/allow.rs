//! The per-app IP allow-list (`DEIS_WHITELIST` entries `ip[:label]` or `cidr[:label]`).

use ipnet::IpNet;
use std::net::IpAddr;

/// One allowed network, with its optional label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    /// The network (a single address is a /32 or /128).
    pub net: IpNet,
    /// The label after the address, e.g. `office`.
    pub label: Option<String>,
}

/// A parsed allow-list. Empty means everyone may connect; an entry that does not parse is
/// dropped, and a list whose every entry was dropped denies everyone (it fails closed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    rules: Vec<AllowRule>,
    deny_all: bool,
}

impl AllowList {
    /// Parses the entries of `AppRoute::whitelist`; returns the list and the entries that
    /// did not parse.
    pub fn parse(entries: &[String]) -> (Self, Vec<String>) {
        let mut rules = Vec::new();
        let mut rejected = Vec::new();
        for entry in entries {
            match parse_rule(entry) {
                Some(rule) => rules.push(rule),
                None => rejected.push(entry.clone()),
            }
        }
        let deny_all = rules.is_empty() && !rejected.is_empty();
        (Self { rules, deny_all }, rejected)
    }

    /// Whether `addr` may connect.
    pub fn allows(&self, addr: IpAddr) -> bool {
        if self.deny_all {
            return false;
        }
        if self.rules.is_empty() {
            return true;
        }
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        self.rules.iter().any(|rule| rule.net.contains(&addr))
    }

    /// The rules that parsed, in order.
    pub fn rules(&self) -> &[AllowRule] {
        &self.rules
    }

    /// Whether this list lets nobody in (every entry was malformed).
    pub fn denies_all(&self) -> bool {
        self.deny_all
    }

    /// Whether everyone may connect.
    pub fn is_open(&self) -> bool {
        self.rules.is_empty() && !self.deny_all
    }
}

fn parse_rule(entry: &str) -> Option<AllowRule> {
    let entry = entry.trim();
    // IPv6 addresses hold colons, so try the whole entry first, then split off a label at
    // the last colon.
    if let Some(net) = parse_net(entry) {
        return Some(AllowRule { net, label: None });
    }
    let (address, label) = entry.rsplit_once(':')?;
    let net = parse_net(address)?;
    let label = (!label.is_empty()).then(|| label.to_string());
    Some(AllowRule { net, label })
}

fn parse_net(text: &str) -> Option<IpNet> {
    let text = text.trim_start_matches('[').trim_end_matches(']');
    if let Ok(net) = text.parse::<IpNet>() {
        return Some(net.trunc());
    }
    text.parse::<IpAddr>().ok().map(IpNet::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        AllowList::parse(&entries).0
    }

    #[test]
    fn matches_addresses_and_networks() {
        let allow = list(&["10.0.0.0/8:office", "1.2.3.4", "2001:db8::/32:v6", "::1"]);
        assert!(allow.allows("10.1.2.3".parse().unwrap()));
        assert!(allow.allows("1.2.3.4".parse().unwrap()));
        assert!(!allow.allows("1.2.3.5".parse().unwrap()));
        assert!(allow.allows("2001:db8::7".parse().unwrap()));
        assert!(allow.allows("::1".parse().unwrap()));
        assert!(!allow.allows("2001:db9::1".parse().unwrap()));
        assert!(allow.allows("::ffff:10.9.9.9".parse().unwrap()));
        assert_eq!(allow.rules()[0].label.as_deref(), Some("office"));
    }

    #[test]
    fn empty_is_open_and_all_bad_is_closed() {
        assert!(list(&[]).allows("8.8.8.8".parse().unwrap()));
        assert!(list(&[]).is_open());
        let bad = list(&["nonsense", "300.1.1.1/8"]);
        assert!(bad.denies_all());
        assert!(!bad.allows("127.0.0.1".parse().unwrap()));
        let (mixed, rejected) =
            AllowList::parse(&["nonsense".to_string(), "127.0.0.1:me".to_string()]);
        assert_eq!(rejected, vec!["nonsense".to_string()]);
        assert!(mixed.allows("127.0.0.1".parse().unwrap()));
    }
}
