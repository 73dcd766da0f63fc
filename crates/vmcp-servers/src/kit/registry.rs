//! What a server offers at this moment: tools, prompts, resources and templates with their
//! handlers, in registration order. Entries can be added and removed while serving.
//!
//! Invariant: every lock here is a std lock held only to copy out what a request needs, never
//! across an `.await`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::{Map, Value};

use super::ctx::Ctx;
use super::output::HandlerResult;
use super::paging;
use super::uri_template::UriTemplate;
use super::wire::RpcError;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Runs a tool: `(arguments, ctx)`.
pub type ToolFn = Arc<dyn Fn(Value, Ctx) -> BoxFuture<HandlerResult> + Send + Sync>;
/// Renders a prompt: `(arguments, ctx)`.
pub type PromptFn = Arc<dyn Fn(Map<String, Value>, Ctx) -> BoxFuture<HandlerResult> + Send + Sync>;
/// Reads a resource.
pub type ReadFn = Arc<dyn Fn(ReadRequest, Ctx) -> BoxFuture<HandlerResult> + Send + Sync>;
/// Answers `completion/complete` with candidate values.
pub type CompleteFn =
    Arc<dyn Fn(CompletionRequest, Ctx) -> BoxFuture<Result<Vec<String>, super::HandlerError>> + Send + Sync>;

/// Box a closure returning a future into a handler.
pub fn boxed<A, T, F, Fut>(f: F) -> Arc<dyn Fn(A, Ctx) -> BoxFuture<T> + Send + Sync>
where
    F: Fn(A, Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Arc::new(move |a, ctx| Box::pin(f(a, ctx)))
}

/// A `resources/read` for one URI; `vars` are the template variables when a template matched.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    pub uri: String,
    pub vars: Vec<(String, String)>,
}

impl ReadRequest {
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// What `completion/complete` asks for.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    /// `ref/prompt` or `ref/resource`.
    pub ref_type: String,
    /// The prompt name or the resource (template) URI.
    pub ref_name: String,
    pub argument: String,
    pub value: String,
    /// `context.arguments`, when given.
    pub context: Map<String, Value>,
}

/// Entries of one kind, in order, with a name index.
pub struct Catalog<H> {
    items: Vec<(String, Arc<str>, H)>,
    index: HashMap<String, usize>,
}

impl<H: Clone> Catalog<H> {
    fn new() -> Self {
        Self { items: Vec::new(), index: HashMap::new() }
    }

    /// Add or replace (in place) the entry `key`.
    pub fn insert(&mut self, key: String, def: String, handler: H) {
        let entry = (key.clone(), Arc::from(def), handler);
        match self.index.get(&key) {
            Some(&i) => self.items[i] = entry,
            None => {
                self.index.insert(key, self.items.len());
                self.items.push(entry);
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> bool {
        let Some(i) = self.index.remove(key) else { return false };
        self.items.remove(i);
        self.index = self.items.iter().enumerate().map(|(i, (k, _, _))| (k.clone(), i)).collect();
        true
    }

    pub fn get(&self, key: &str) -> Option<H> {
        self.index.get(key).map(|&i| self.items[i].2.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The definitions on one page, and the cursor for the next.
    pub fn page(
        &self,
        cursor: Option<&str>,
        size: Option<usize>,
    ) -> Result<(Vec<Arc<str>>, Option<String>), RpcError> {
        let (range, next) = paging::page(self.items.len(), cursor, size)?;
        Ok((self.items[range].iter().map(|(_, d, _)| d.clone()).collect(), next))
    }

    /// Every entry's key and handler.
    pub fn entries(&self) -> Vec<(String, H)> {
        self.items.iter().map(|(k, _, h)| (k.clone(), h.clone())).collect()
    }
}

/// A template's matcher and read handler.
pub type TemplateEntry = (Arc<UriTemplate>, ReadFn);

/// Everything a server offers.
pub struct Registry {
    pub tools: RwLock<Catalog<ToolFn>>,
    pub prompts: RwLock<Catalog<PromptFn>>,
    pub resources: RwLock<Catalog<ReadFn>>,
    pub templates: RwLock<Catalog<TemplateEntry>>,
    pub completion: Option<CompleteFn>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            tools: RwLock::new(Catalog::new()),
            prompts: RwLock::new(Catalog::new()),
            resources: RwLock::new(Catalog::new()),
            templates: RwLock::new(Catalog::new()),
            completion: None,
        }
    }
}

/// Read a catalog, ignoring poisoning (no invariant spans a panic here).
pub fn read<H>(lock: &RwLock<Catalog<H>>) -> std::sync::RwLockReadGuard<'_, Catalog<H>> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub fn write<H>(lock: &RwLock<Catalog<H>>) -> std::sync::RwLockWriteGuard<'_, Catalog<H>> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    /// The handler that reads `uri`: a concrete resource first, then the first matching template.
    pub fn reader(&self, uri: &str) -> Option<(ReadFn, Vec<(String, String)>)> {
        if let Some(h) = read(&self.resources).get(uri) {
            return Some((h, Vec::new()));
        }
        read(&self.templates)
            .entries()
            .into_iter()
            .find_map(|(_, (t, h))| t.matches(uri).map(|vars| (h, vars)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_keeps_order_across_edits() {
        let mut c: Catalog<u8> = Catalog::new();
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            c.insert((*k).into(), format!("\"{k}\""), i as u8);
        }
        c.insert("b".into(), "\"B\"".into(), 9);
        assert!(c.remove("a"));
        assert!(!c.remove("a"));
        let (defs, next) = c.page(None, Some(1)).unwrap();
        assert_eq!(defs.iter().map(|d| d.as_ref()).collect::<Vec<_>>(), ["\"B\""]);
        let (defs, _) = c.page(next.as_deref(), Some(1)).unwrap();
        assert_eq!(defs.iter().map(|d| d.as_ref()).collect::<Vec<_>>(), ["\"c\""]);
        assert_eq!((c.get("b"), c.get("c"), c.get("a")), (Some(9), Some(2), None));
    }
}
