//! The configuration reference (`docs/configuration.md`, printed by `alcove config reference`),
//! generated from the config structs: their JSON schema (schemars) gives every key, its type,
//! its default (the structs' `Default`) and its doc comment. A unit test fails when the committed
//! page differs, so no key goes undocumented.
//!
//! It only reads the schema; it may not know any key by name.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::config::Config;

/// The whole Markdown page.
pub fn markdown() -> String {
    let schema = schemars::schema_for!(Config);
    let root = schema.as_value();
    let defs = root.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut page = String::from(
        "# Configuration reference\n\n\
         Generated from the config structs by `alcove config reference` (a test fails when this page\n\
         and the code disagree). Every key can also be set from the environment as\n\
         `ALCOVE_<SECTION>_<KEY>` (`ALCOVE_S3_ACCESS_LOG=true`), and `alcove serve`'s flags override\n\
         both; see the README's [Configuration](../README.md#configuration) section for the order.\n\
         A key that is not listed here is refused at start-up.\n",
    );
    let mut sections = Vec::new();
    collect(&Schema::new(root, &defs), "", false, &mut sections);
    for section in sections {
        section.write(&mut page);
    }
    page
}

/// One table of keys: `[s3]`, `[[cluster.workers]]`, or the top level.
struct Section {
    path: String,
    repeated: bool,
    description: String,
    keys: Vec<(String, String, String, String)>,
}

impl Section {
    fn write(&self, page: &mut String) {
        let title = match (self.path.as_str(), self.repeated) {
            ("", _) => "Top level".to_owned(),
            (path, true) => format!("`[[{path}]]`"),
            (path, false) => format!("`[{path}]`"),
        };
        let _ = write!(page, "\n## {title}\n\n");
        if !self.description.is_empty() {
            let _ = write!(page, "{}\n\n", self.description);
        }
        if self.keys.is_empty() {
            return;
        }
        page.push_str("| key | type | default | description |\n|---|---|---|---|\n");
        for (key, kind, default, description) in &self.keys {
            let _ = writeln!(page, "| `{key}` | {kind} | {default} | {} |", cell(description));
        }
    }
}

/// A schema node with `$ref`s resolved against the definitions.
struct Schema<'a> {
    node: &'a Value,
    defs: &'a Map<String, Value>,
}

impl<'a> Schema<'a> {
    fn new(node: &'a Value, defs: &'a Map<String, Value>) -> Self {
        Schema { node, defs }.resolved()
    }

    /// Follows `$ref`, and the one non-null branch of an `Option`'s `anyOf`.
    fn resolved(self) -> Self {
        if let Some(name) = self.node.get("$ref").and_then(Value::as_str) {
            if let Some(target) = name.rsplit('/').next().and_then(|n| self.defs.get(n)) {
                return Schema { node: target, defs: self.defs }.resolved();
            }
        }
        let branches = self.node.get("anyOf").or_else(|| self.node.get("oneOf")).and_then(Value::as_array);
        if let Some(branches) = branches {
            let real: Vec<&Value> = branches.iter().filter(|b| b.get("type") != Some(&Value::from("null"))).collect();
            if let [only] = real.as_slice() {
                return Schema { node: only, defs: self.defs }.resolved();
            }
        }
        self
    }

    fn properties(&self) -> Option<&'a Map<String, Value>> {
        self.node.get("properties").and_then(Value::as_object)
    }

    fn text(&self, field: &str) -> Option<&'a str> {
        self.node.get(field).and_then(Value::as_str)
    }

    /// The schema of an array's items, when this is an array of tables.
    fn table_items(&self) -> Option<Schema<'a>> {
        let items = Schema::new(self.node.get("items")?, self.defs);
        items.properties().is_some().then_some(items)
    }

    fn kind(&self) -> String {
        if let Some(title) = self.text("title") {
            return title.to_owned();
        }
        if let Some(values) = self.node.get("enum").and_then(Value::as_array) {
            return values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(" or ");
        }
        match self.node.get("type") {
            Some(Value::String(t)) if t == "array" => {
                let items = self.node.get("items").map(|i| Schema::new(i, self.defs).kind());
                format!("list of {}", items.unwrap_or_else(|| "values".into()))
            }
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(ts)) => {
                ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect::<Vec<_>>().join(" or ")
            }
            _ => "value".to_owned(),
        }
    }
}

/// Adds the section at `path` and, after it, its sub-tables.
fn collect(schema: &Schema<'_>, path: &str, repeated: bool, out: &mut Vec<Section>) {
    let Some(properties) = schema.properties() else { return };
    let mut section = Section {
        path: path.to_owned(),
        repeated,
        description: schema.text("description").unwrap_or_default().to_owned(),
        keys: Vec::new(),
    };
    let mut tables = Vec::new();
    for (name, raw) in properties {
        let child = Schema::new(raw, schema.defs);
        let full = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
        // A field's own doc comment, else its type's.
        let description = raw.get("description").and_then(Value::as_str).or(child.text("description"));
        if child.properties().is_some() && !is_free_map(&child) {
            tables.push((child, full, false, description));
        } else if let Some(items) = child.table_items() {
            tables.push((items, full, true, description));
        } else {
            let default = raw.get("default").map_or_else(|| "none".to_owned(), shown);
            section.keys.push((name.clone(), child.kind(), default, description.unwrap_or_default().to_owned()));
        }
    }
    out.push(section);
    for (child, full, repeated, description) in tables {
        let at = out.len();
        collect(&child, &full, repeated, out);
        if let (Some(section), Some(description)) = (out.get_mut(at), description) {
            section.description = description.to_owned();
        }
    }
}

/// A map of free keys (a mount's options), documented as one value rather than a table.
fn is_free_map(schema: &Schema<'_>) -> bool {
    schema.properties().is_some_and(Map::is_empty) && schema.node.get("additionalProperties").is_some()
}

/// A default value as it would be written in the TOML file.
fn shown(value: &Value) -> String {
    match value {
        Value::Null => "none".to_owned(),
        Value::Array(items) if items.is_empty() => "`[]`".to_owned(),
        Value::Object(map) if map.is_empty() => "none".to_owned(),
        other => format!("`{other}`"),
    }
}

/// Text fit for one table cell: one line, no column separators.
fn cell(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_reference_is_the_generated_one() {
        let committed = include_str!("../../../docs/configuration.md");
        let generated = markdown();
        assert!(
            committed == generated,
            "docs/configuration.md is not what the config structs say; regenerate it with\n  \
             cargo run -p alcove -- config reference > docs/configuration.md\n--- generated ---\n{generated}"
        );
    }

    #[test]
    fn every_section_and_key_is_there() {
        let page = markdown();
        for expected in ["## `[s3]`", "| `addr` |", "## `[[cluster.workers]]`", "## `[cache]`", "| `page_size` |"] {
            assert!(page.contains(expected), "{expected} missing from\n{page}");
        }
        assert!(page.contains("| `shutdown_grace` | integer | `30` |"), "{page}");
        let undocumented: Vec<&str> = page.lines().filter(|l| l.starts_with("| `") && l.ends_with("|  |")).collect();
        assert!(undocumented.is_empty(), "keys without a doc comment in config.rs: {undocumented:#?}");
    }
}
