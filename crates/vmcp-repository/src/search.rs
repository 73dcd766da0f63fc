//! Search: filters (tag, repository, transport), then ranking by how a query matched:
//! exact name > name prefix > name word > tag > description > typo (Damerau-Levenshtein).
//!
//! Invariant: pure and allocation-light over precomputed lower-case fields; the typo pass runs
//! only when the exact passes found fewer hits than the limit.

use serde::Serialize;

use crate::index::{Index, SearchDoc, char_mask};
use crate::package::Package;

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Words to match; empty lists everything that passes the filters.
    pub text: String,
    /// Every tag listed must be on the package.
    pub tags: Vec<String>,
    pub repository: Option<String>,
    /// `stdio`, `http` or `sse`.
    pub transport: Option<String>,
    /// At most this many hits; 0 = all.
    pub limit: usize,
}

/// How a package matched, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    Exact,
    Prefix,
    Word,
    Tag,
    Description,
    Typo,
    /// An empty query: everything matches.
    Any,
}

/// One result.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub package: &'a Package,
    pub kind: MatchKind,
    /// Edit distance for typo matches, else 0.
    pub distance: usize,
}

impl Index {
    /// Ranked results for `query`.
    pub fn search(&self, query: &SearchQuery) -> Vec<Hit<'_>> {
        let text = query.text.trim().to_lowercase();
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let joined = (tokens.len() > 1).then(|| tokens.join("-"));
        let terms = Terms { text: &text, joined: joined.as_deref(), tokens: &tokens };
        let tags: Vec<String> = query.tags.iter().map(|t| t.to_lowercase()).collect();
        let candidates =
            self.packages().iter().zip(&self.docs).filter(|(p, d)| passes_filters(p, d, query, &tags));
        let mut hits = Vec::new();
        let mut misses = Vec::new();
        for (pkg, doc) in candidates {
            let found =
                if tokens.is_empty() { Some((MatchKind::Any, 0)) } else { match_query(doc, &terms, false) };
            match found {
                Some((kind, distance)) => hits.push((Hit { package: pkg, kind, distance }, doc)),
                None => misses.push((pkg, doc)),
            }
        }
        if !tokens.is_empty() && (query.limit == 0 || hits.len() < query.limit) {
            for (pkg, doc) in misses {
                if let Some((kind, distance)) = match_query(doc, &terms, true) {
                    hits.push((Hit { package: pkg, kind, distance }, doc));
                }
            }
        }
        let order = |(a, da): &(Hit<'_>, &SearchDoc), (b, db): &(Hit<'_>, &SearchDoc)| {
            (a.kind, a.distance, da.priority, &da.name).cmp(&(b.kind, b.distance, db.priority, &db.name))
        };
        if query.limit > 0 && hits.len() > query.limit {
            hits.select_nth_unstable_by(query.limit - 1, order);
            hits.truncate(query.limit);
        }
        hits.sort_by(order);
        hits.into_iter().map(|(h, _)| h).collect()
    }
}

fn passes_filters(pkg: &Package, doc: &SearchDoc, q: &SearchQuery, tags: &[String]) -> bool {
    q.repository.as_ref().is_none_or(|r| pkg.repository == *r)
        && q.transport.as_ref().is_none_or(|t| doc.transports.iter().any(|x| x == t))
        && tags.iter().all(|t| doc.tags.contains(t))
}

/// The query's text, split once per search rather than once per package.
struct Terms<'q> {
    text: &'q str,
    /// The tokens joined by `-`, when there are several: tried as one name.
    joined: Option<&'q str>,
    tokens: &'q [&'q str],
}

/// The whole query as one name first, then every token on its own (the worst token decides).
fn match_query(doc: &SearchDoc, terms: &Terms<'_>, typos: bool) -> Option<(MatchKind, usize)> {
    if let Some(joined) = terms.joined {
        if let Some(m) = match_name(doc, joined) {
            return Some((m, 0));
        }
        if !typos && doc.description.contains(terms.text) {
            return Some((MatchKind::Description, 0));
        }
    }
    let mut worst = (MatchKind::Exact, 0);
    for token in terms.tokens {
        let m = match_token(doc, token)
            .map(|k| (k, 0))
            .or_else(|| if typos { match_typo(doc, token) } else { None })?;
        worst = (worst.0.max(m.0), worst.1 + m.1);
    }
    Some(worst)
}

fn match_name(doc: &SearchDoc, t: &str) -> Option<MatchKind> {
    if doc.name == t || doc.short == t {
        Some(MatchKind::Exact)
    } else if doc.name.starts_with(t) || doc.short.starts_with(t) {
        Some(MatchKind::Prefix)
    } else if doc.words.iter().any(|w| w.starts_with(t)) {
        Some(MatchKind::Word)
    } else {
        None
    }
}

fn match_token(doc: &SearchDoc, t: &str) -> Option<MatchKind> {
    match_name(doc, t).or_else(|| {
        if doc.tags.iter().any(|tag| tag == t) {
            Some(MatchKind::Tag)
        } else if doc.description.contains(t) {
            Some(MatchKind::Description)
        } else {
            None
        }
    })
}

/// Typos allowed for a token: none up to 3 characters, 1 up to 5, then 2.
fn max_typos(len: usize) -> usize {
    match len {
        0..=3 => 0,
        4..=5 => 1,
        _ => 2,
    }
}

fn match_typo(doc: &SearchDoc, t: &str) -> Option<(MatchKind, usize)> {
    let k = max_typos(t.chars().count());
    if k == 0 {
        return None;
    }
    let mask = char_mask(t);
    let k32 = k as u32;
    doc.fuzzy
        .iter()
        .filter(|(_, m)| (mask & !m).count_ones() <= k32 && (m & !mask).count_ones() <= k32)
        .filter_map(|(w, _)| within(t, w, k))
        .min()
        .map(|d| (MatchKind::Typo, d))
}

/// Damerau-Levenshtein (optimal string alignment) distance if at most `k`. Callers first reject
/// pairs whose character masks differ in more than `k` characters (a lower bound).
fn within(a: &str, b: &str, k: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > k {
        return None;
    }
    if a.len() > 63 || b.len() > 63 {
        let d = strsim::osa_distance(&a.iter().collect::<String>(), &b.iter().collect::<String>());
        return (d <= k).then_some(d);
    }
    osa_bounded(&a, &b, k)
}

/// Optimal string alignment on short strings, three rolling rows, stopping once a row exceeds `k`.
fn osa_bounded(a: &[char], b: &[char], k: usize) -> Option<usize> {
    let m = b.len();
    let mut rows = [[0u8; 64]; 3];
    for (j, cell) in rows[0].iter_mut().enumerate().take(m + 1) {
        *cell = j as u8;
    }
    for i in 1..=a.len() {
        let (cur, prev, prev2) = (i % 3, (i + 2) % 3, (i + 1) % 3);
        rows[cur][0] = i as u8;
        let mut row_min = i as u8;
        for j in 1..=m {
            let cost = u8::from(a[i - 1] != b[j - 1]);
            let mut v = (rows[prev][j] + 1).min(rows[cur][j - 1] + 1).min(rows[prev][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(rows[prev2][j - 2] + 1);
            }
            rows[cur][j] = v;
            row_min = row_min.min(v);
        }
        if usize::from(row_min) > k {
            return None;
        }
    }
    let d = usize::from(rows[a.len() % 3][m]);
    (d <= k).then_some(d)
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
