//! The user's own routing rules: "always go direct to this domain" or "always use a bridge for it".
//!
//! A rule names a domain and covers its subdomains; the most specific matching rule wins, and `*` covers every
//! host. Rules beat anything the proxy has learnt.

use super::Route;
use super::host::{Host, HostError};

/// The most rules one rule set holds; rules come from the user, but a configuration file is still outside input.
pub const MAX_RULES: usize = 4096;

/// What a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    /// Every host.
    Everything,
    /// This domain and every name under it, or exactly this IP address.
    Domain(Host),
}

impl Pattern {
    /// Reads `*` or a domain name / IP literal (a leading `*.` or `.` is accepted and ignored, since a domain
    /// pattern always covers its subdomains).
    pub fn parse(text: &str) -> Result<Pattern, HostError> {
        let text = text.trim();
        if text == "*" {
            return Ok(Pattern::Everything);
        }
        let domain = text
            .strip_prefix("*.")
            .or_else(|| text.strip_prefix('.'))
            .unwrap_or(text);
        Host::parse(domain).map(Pattern::Domain)
    }

    /// Whether `host` is covered.
    pub fn matches(&self, host: &Host) -> bool {
        match self {
            Pattern::Everything => true,
            Pattern::Domain(domain) => host.is_within(domain),
        }
    }

    /// Longer patterns are more specific; `*` is the least specific of all.
    fn specificity(&self) -> usize {
        match self {
            Pattern::Everything => 0,
            Pattern::Domain(domain) => 1 + domain.as_str().len(),
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Everything => f.write_str("*"),
            Pattern::Domain(domain) => write!(f, "{domain}"),
        }
    }
}

/// One user rule: sites matching `pattern` always take `route`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub pattern: Pattern,
    pub route: Route,
}

/// Why a rule set could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("more than {MAX_RULES} rules")]
    TooMany,
    #[error("rule {0:?} is not of the form PATTERN=direct or PATTERN=bridge")]
    BadSyntax(String),
    #[error("bad pattern in rule: {0}")]
    Pattern(#[from] HostError),
    #[error("two rules for {0} disagree")]
    Conflict(Pattern),
}

impl Rule {
    /// Reads `PATTERN=direct` or `PATTERN=bridge`, the form used in flags and configuration.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let (pattern, route) = text
            .split_once('=')
            .ok_or_else(|| RuleError::BadSyntax(text.to_owned()))?;
        let route = match route.trim() {
            "direct" => Route::Direct,
            "bridge" => Route::Bridge,
            _ => return Err(RuleError::BadSyntax(text.to_owned())),
        };
        Ok(Rule {
            pattern: Pattern::parse(pattern)?,
            route,
        })
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.pattern, self.route)
    }
}

/// A checked set of rules, kept most specific first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// Builds a rule set. Two rules with the same pattern must agree (a repeated identical rule is kept once).
    pub fn new(mut rules: Vec<Rule>) -> Result<Rules, RuleError> {
        if rules.len() > MAX_RULES {
            return Err(RuleError::TooMany);
        }
        rules.sort_by(|a, b| {
            b.pattern
                .specificity()
                .cmp(&a.pattern.specificity())
                .then_with(|| a.pattern.cmp(&b.pattern))
        });
        rules.dedup();
        for pair in rules.windows(2) {
            if pair[0].pattern == pair[1].pattern {
                return Err(RuleError::Conflict(pair[0].pattern.clone()));
            }
        }
        Ok(Rules(rules))
    }

    /// The route the most specific matching rule forces, if any.
    pub fn route_for(&self, host: &Host) -> Option<Route> {
        self.0
            .iter()
            .find(|rule| rule.pattern.matches(host))
            .map(|rule| rule.route)
    }

    /// The rules, most specific first.
    pub fn rules(&self) -> &[Rule] {
        &self.0
    }
}
