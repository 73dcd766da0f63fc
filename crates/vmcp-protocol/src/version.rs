//! Protocol versions and the two eras: legacy (session with `initialize`) and modern (2026-07-28,
//! stateless, `server/discover`, per-request `_meta`).

/// The versions vMCP speaks, oldest first.
pub const LEGACY_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
pub const LATEST_LEGACY: &str = "2025-11-25";
pub const MODERN: &str = "2026-07-28";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Era {
    Legacy,
    Modern,
}

/// A protocol version vMCP knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    V2024_11_05,
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
    V2026_07_28,
}

impl ProtocolVersion {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "2024-11-05" => Self::V2024_11_05,
            "2025-03-26" => Self::V2025_03_26,
            "2025-06-18" => Self::V2025_06_18,
            "2025-11-25" => Self::V2025_11_25,
            "2026-07-28" => Self::V2026_07_28,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2024_11_05 => "2024-11-05",
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    pub fn era(self) -> Era {
        if self == Self::V2026_07_28 { Era::Modern } else { Era::Legacy }
    }

    /// JSON-RPC batches are part of 2025-03-26 only.
    pub fn allows_batches(self) -> bool {
        self == Self::V2025_03_26
    }

    /// The version a legacy server answers to an `initialize` asking for `requested`: the same
    /// one if known, else the latest legacy version (the client then decides whether to go on).
    pub fn negotiate_legacy(requested: &str) -> Self {
        match Self::parse(requested) {
            Some(v) if v.era() == Era::Legacy => v,
            _ => Self::V2025_11_25,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_keeps_known_legacy_versions() {
        for v in LEGACY_VERSIONS {
            assert_eq!(ProtocolVersion::negotiate_legacy(v).as_str(), v);
        }
        assert_eq!(ProtocolVersion::negotiate_legacy("1999-01-01").as_str(), LATEST_LEGACY);
        assert_eq!(ProtocolVersion::negotiate_legacy(MODERN).as_str(), LATEST_LEGACY);
        assert_eq!(ProtocolVersion::parse(MODERN).map(ProtocolVersion::era), Some(Era::Modern));
    }
}
