//! Definitions of what a server offers, as they appear in the four lists: [`Tool`], [`Prompt`],
//! [`Resource`] and [`Template`]. Each is a JSON object built once and listed as text; vendor
//! members can be added verbatim with `raw_members`.

use serde_json::{Map, Value, json};

use super::output::append_members;

/// The common part: an object plus raw members appended when it is serialized.
#[derive(Debug, Clone, Default)]
struct Def {
    body: Map<String, Value>,
    raw: Vec<String>,
}

impl Def {
    fn set(&mut self, key: &str, value: Value) {
        self.body.insert(key.to_owned(), value);
    }

    fn to_text(&self) -> String {
        let text = Value::Object(self.body.clone()).to_string();
        self.raw.iter().fold(text, |t, m| append_members(&t, m))
    }
}

macro_rules! def_methods {
    () => {
        /// Set any member.
        pub fn set(mut self, key: &str, value: Value) -> Self {
            self.def.set(key, value);
            self
        }

        pub fn title(self, title: &str) -> Self {
            self.set("title", json!(title))
        }

        /// Add members given as JSON text without braces, written out verbatim.
        pub fn raw_members(mut self, members: impl Into<String>) -> Self {
            self.def.raw.push(members.into());
            self
        }

        /// The definition as JSON text.
        pub fn to_text(&self) -> String {
            self.def.to_text()
        }
    };
}

/// A tool.
#[derive(Debug, Clone)]
pub struct Tool {
    name: String,
    def: Def,
}

impl Tool {
    pub fn new(name: &str, description: &str, input_schema: Value) -> Self {
        let mut def = Def::default();
        def.set("name", json!(name));
        def.set("description", json!(description));
        def.set("inputSchema", input_schema);
        Self { name: name.to_owned(), def }
    }

    /// A tool from its full definition (an object with a string `name`).
    pub fn from_json(def: Value) -> Option<Self> {
        let Value::Object(body) = def else { return None };
        let name = body.get("name")?.as_str()?.to_owned();
        Some(Self { name, def: Def { body, raw: Vec::new() } })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    def_methods!();

    pub fn output_schema(self, schema: Value) -> Self {
        self.set("outputSchema", schema)
    }

    /// Set one `annotations` hint.
    pub fn hint(mut self, key: &str, value: bool) -> Self {
        let annotations = self.def.body.entry("annotations").or_insert_with(|| json!({}));
        if let Some(map) = annotations.as_object_mut() {
            map.insert(key.to_owned(), json!(value));
        }
        self
    }

    /// `readOnlyHint: true`.
    pub fn read_only(self) -> Self {
        self.hint("readOnlyHint", true)
    }

    /// `idempotentHint: true`.
    pub fn idempotent(self) -> Self {
        self.hint("idempotentHint", true)
    }
}

/// A prompt.
#[derive(Debug, Clone)]
pub struct Prompt {
    name: String,
    def: Def,
}

impl Prompt {
    pub fn new(name: &str, description: &str) -> Self {
        let mut def = Def::default();
        def.set("name", json!(name));
        def.set("description", json!(description));
        Self { name: name.to_owned(), def }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    def_methods!();

    pub fn argument(mut self, name: &str, description: &str, required: bool) -> Self {
        let args = self.def.body.entry("arguments").or_insert_with(|| json!([]));
        if let Some(list) = args.as_array_mut() {
            list.push(json!({ "name": name, "description": description, "required": required }));
        }
        self
    }
}

/// A concrete resource.
#[derive(Debug, Clone)]
pub struct Resource {
    uri: String,
    def: Def,
}

impl Resource {
    pub fn new(uri: &str, name: &str) -> Self {
        let mut def = Def::default();
        def.set("uri", json!(uri));
        def.set("name", json!(name));
        Self { uri: uri.to_owned(), def }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    def_methods!();

    pub fn description(self, description: &str) -> Self {
        self.set("description", json!(description))
    }

    pub fn mime(self, mime: &str) -> Self {
        self.set("mimeType", json!(mime))
    }
}

/// A resource template (`uriTemplate`).
#[derive(Debug, Clone)]
pub struct Template {
    uri_template: String,
    def: Def,
}

impl Template {
    pub fn new(uri_template: &str, name: &str) -> Self {
        let mut def = Def::default();
        def.set("uriTemplate", json!(uri_template));
        def.set("name", json!(name));
        Self { uri_template: uri_template.to_owned(), def }
    }

    pub fn uri_template(&self) -> &str {
        &self.uri_template
    }

    def_methods!();

    pub fn description(self, description: &str) -> Self {
        self.set("description", json!(description))
    }

    pub fn mime(self, mime: &str) -> Self {
        self.set("mimeType", json!(mime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_definitions_in_order_with_raw_members() {
        let tool = Tool::new("echo", "Echo", json!({"type":"object"}))
            .read_only()
            .idempotent()
            .raw_members(r#""x":1.50"#);
        assert_eq!(
            tool.to_text(),
            r#"{"name":"echo","description":"Echo","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true,"idempotentHint":true},"x":1.50}"#
        );
        let prompt = Prompt::new("greet", "Greet").argument("name", "who", true);
        assert_eq!(
            prompt.to_text(),
            r#"{"name":"greet","description":"Greet","arguments":[{"name":"name","description":"who","required":true}]}"#
        );
        assert_eq!(
            Resource::new("a://b", "b").mime("text/plain").to_text(),
            r#"{"uri":"a://b","name":"b","mimeType":"text/plain"}"#
        );
        assert_eq!(Template::new("a://{x}", "x").uri_template(), "a://{x}");
    }
}
