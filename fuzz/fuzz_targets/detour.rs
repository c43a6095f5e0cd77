//! Host names and rules from proxy clients, flags and the saved rules file: `Host::parse`, `Pattern::parse`,
//! `Rule::parse` and `Rules::new` never panic; a parsed host or rule prints to text that parses to the same value,
//! and a rule set built from the lines routes every parsed host without panicking.
#![no_main]

use kolokol_core::detour::{Host, Pattern, Rule, Rules};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut rules = Vec::new();
    let mut hosts = Vec::new();
    for line in text.lines().take(64) {
        if let Ok(host) = Host::parse(line) {
            let again = Host::parse(host.as_str()).expect("a parsed host parses again");
            assert_eq!(again, host);
            hosts.push(host);
        }
        if let Ok(pattern) = Pattern::parse(line) {
            let again = Pattern::parse(&pattern.to_string()).expect("a printed pattern parses");
            assert_eq!(again, pattern);
        }
        if let Ok(rule) = Rule::parse(line) {
            let again = Rule::parse(&rule.to_string()).expect("a printed rule parses");
            assert_eq!(again, rule);
            rules.push(rule);
        }
    }
    if let Ok(rules) = Rules::new(rules) {
        for host in &hosts {
            let _ = rules.route_for(host);
            for rule in rules.rules() {
                let _ = rule.pattern.matches(host);
                let _ = host.is_within(host);
            }
        }
    }
});
