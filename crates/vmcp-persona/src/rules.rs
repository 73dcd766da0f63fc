//! Per-server rules: `allow` and `deny` glob patterns for tools, prompts and resources, as
//! written on disk (`Raw*`) and compiled for [`crate::Persona::check`].
//!
//! Semantics, for one server that the persona has enabled and one kind of item:
//! - a `deny` pattern that matches wins, always;
//! - else, if there are `allow` patterns, the item must match one of them;
//! - else (no `allow` patterns for this kind) the item is reachable.
//!
//! Tools and prompts are matched by their backend name (without the gateway's prefix),
//! resources by URI, resource templates (when listing) by their `uriTemplate` string.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::PersonaError;
use crate::pattern::Pattern;

/// What kind of thing a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Tool,
    Prompt,
    /// A resource by URI, or a resource template by its `uriTemplate`.
    Resource,
    /// Gateway-level operations on a server itself (`vmcp/servers/*`): only "is it enabled".
    Server,
}

impl Kind {
    /// A stable word for refusals and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Prompt => "prompt",
            Kind::Resource => "resource",
            Kind::Server => "server",
        }
    }
}

/// Why a persona may not do something; the gateway sends 3002 or 3003.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The server is not enabled for this persona (3002).
    #[error("server not allowed for this persona")]
    ServerNotAllowed,
    /// The server is enabled but a rule keeps this item out (3003).
    #[error("not permitted for this persona")]
    NotPermitted,
}

impl Denied {
    /// A stable word for logs and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Denied::ServerNotAllowed => "server_not_allowed",
            Denied::NotPermitted => "not_permitted",
        }
    }
}

/// The kinds a rule can name (`--kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum RuleKind {
    Tool,
    Prompt,
    Resource,
}

impl RuleKind {
    pub const ALL: [RuleKind; 3] = [RuleKind::Tool, RuleKind::Prompt, RuleKind::Resource];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Tool => "tool",
            RuleKind::Prompt => "prompt",
            RuleKind::Resource => "resource",
        }
    }
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

/// One kind's patterns as written on disk (kept sorted and without duplicates).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuleSet {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub allow: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub deny: BTreeSet<String>,
}

impl RawRuleSet {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    pub fn patterns_mut(&mut self, effect: Effect) -> &mut BTreeSet<String> {
        match effect {
            Effect::Allow => &mut self.allow,
            Effect::Deny => &mut self.deny,
        }
    }
}

/// One server's rules as written on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServerRules {
    #[serde(default, skip_serializing_if = "RawRuleSet::is_empty")]
    pub tools: RawRuleSet,
    #[serde(default, skip_serializing_if = "RawRuleSet::is_empty")]
    pub prompts: RawRuleSet,
    #[serde(default, skip_serializing_if = "RawRuleSet::is_empty")]
    pub resources: RawRuleSet,
}

impl RawServerRules {
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.prompts.is_empty() && self.resources.is_empty()
    }

    pub fn kind(&self, kind: RuleKind) -> &RawRuleSet {
        match kind {
            RuleKind::Tool => &self.tools,
            RuleKind::Prompt => &self.prompts,
            RuleKind::Resource => &self.resources,
        }
    }

    pub fn kind_mut(&mut self, kind: RuleKind) -> &mut RawRuleSet {
        match kind {
            RuleKind::Tool => &mut self.tools,
            RuleKind::Prompt => &mut self.prompts,
            RuleKind::Resource => &mut self.resources,
        }
    }
}

/// One kind's compiled patterns.
#[derive(Debug, Clone, Default)]
pub(crate) struct KindRules {
    allow: Box<[Pattern]>,
    deny: Box<[Pattern]>,
}

impl KindRules {
    fn compile(raw: &RawRuleSet) -> Result<Self, PersonaError> {
        let compile = |set: &BTreeSet<String>| -> Result<Box<[Pattern]>, PersonaError> {
            set.iter().map(|p| Pattern::new(p)).collect()
        };
        Ok(Self { allow: compile(&raw.allow)?, deny: compile(&raw.deny)? })
    }

    #[inline]
    fn permits(&self, name: &str) -> bool {
        if self.deny.iter().any(|p| p.matches(name)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|p| p.matches(name))
    }
}

/// An enabled server's compiled rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerAccess {
    tools: KindRules,
    prompts: KindRules,
    resources: KindRules,
}

impl ServerAccess {
    pub(crate) fn compile(raw: &RawServerRules) -> Result<Self, PersonaError> {
        Ok(Self {
            tools: KindRules::compile(&raw.tools)?,
            prompts: KindRules::compile(&raw.prompts)?,
            resources: KindRules::compile(&raw.resources)?,
        })
    }

    #[inline]
    pub(crate) fn permits(&self, kind: Kind, name: &str) -> bool {
        match kind {
            Kind::Tool => self.tools.permits(name),
            Kind::Prompt => self.prompts.permits(name),
            Kind::Resource => self.resources.permits(name),
            Kind::Server => true,
        }
    }
}
