//! The server's environment at install time: from `--env` flags, the existing entry, the
//! caller's environment (stored as a `${VAR}` reference, never its value), defaults, or a prompt
//! (without echo for secrets). Values are never logged.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use crate::error::{RepoError, Result};
use crate::install_spec::EnvVar;

/// Asks the operator for a missing value.
pub trait Prompter {
    /// False under `--yes` or without a terminal: a missing required value is then an error.
    fn can_ask(&self) -> bool;
    fn ask(&self, package: &str, var: &EnvVar) -> Result<String>;
}

/// Prompts on the terminal; secrets through `rpassword` (no echo).
pub struct TerminalPrompter {
    pub yes: bool,
}

impl Prompter for TerminalPrompter {
    fn can_ask(&self) -> bool {
        !self.yes && std::io::stdin().is_terminal()
    }

    fn ask(&self, package: &str, var: &EnvVar) -> Result<String> {
        let about = var.description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        let prompt = format!("{package} needs {}{about}: ", var.name);
        let answer = if var.secret {
            rpassword::prompt_password(prompt)
        } else {
            eprint!("{prompt}");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map(|_| line.trim_end_matches(['\r', '\n']).to_owned())
        };
        answer.map_err(|e| RepoError::usage(format!("cannot read {}: {e}", var.name)))
    }
}

/// Never asks (library callers, `--yes`).
pub struct NoPrompt;

impl Prompter for NoPrompt {
    fn can_ask(&self) -> bool {
        false
    }
    fn ask(&self, _: &str, var: &EnvVar) -> Result<String> {
        Err(RepoError::usage(format!("{} is required", var.name)))
    }
}

/// Where values come from, besides the prompt.
pub struct EnvInputs<'a> {
    /// `--env KEY=VALUE`, stored literally.
    pub given: &'a [(String, String)],
    /// The current entry's environment (kept on update and reinstall).
    pub existing: &'a BTreeMap<String, String>,
    /// The caller's environment: a hit is stored as `${KEY}`.
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Expands `{data_dir}` and `{install_dir}` in defaults.
    pub expand: &'a dyn Fn(&str) -> String,
}

/// Resolve every declared variable (and pass through undeclared `--env` ones).
pub fn collect(
    package: &str,
    vars: &[EnvVar],
    inputs: &EnvInputs<'_>,
    prompter: &dyn Prompter,
) -> Result<BTreeMap<String, String>> {
    let mut out = inputs.existing.clone();
    let mut missing = Vec::new();
    for var in vars {
        if let Some((_, v)) = inputs.given.iter().find(|(k, _)| *k == var.name) {
            out.insert(var.name.clone(), literal(v));
        } else if inputs.existing.contains_key(&var.name) {
        } else if (inputs.lookup)(&var.name).is_some() {
            out.insert(var.name.clone(), format!("${{{}}}", var.name));
        } else if let Some(d) = &var.default {
            out.insert(var.name.clone(), literal(&(inputs.expand)(d)));
        } else if var.required {
            if !prompter.can_ask() {
                missing.push(var);
                continue;
            }
            let value = prompter.ask(package, var)?;
            if value.is_empty() {
                return Err(RepoError::usage(format!("{} is required by {package}", var.name)));
            }
            out.insert(var.name.clone(), literal(&value));
        }
    }
    for (k, v) in inputs.given {
        out.entry(k.clone()).or_insert_with(|| literal(v));
    }
    if !missing.is_empty() {
        return Err(missing_error(package, &missing));
    }
    Ok(out)
}

fn missing_error(package: &str, missing: &[&EnvVar]) -> RepoError {
    let names: Vec<String> = missing
        .iter()
        .map(|v| match &v.description {
            Some(d) => format!("{} ({d})", v.name),
            None => v.name.clone(),
        })
        .collect();
    let flags: Vec<String> = missing.iter().map(|v| format!("--env {}=...", v.name)).collect();
    RepoError::usage(format!(
        "{package} needs {}; pass {} or export the variable{} before installing",
        names.join(", "),
        flags.join(" "),
        if missing.len() > 1 { "s" } else { "" }
    ))
}

/// A literal value for servers.json, where `$` starts a reference: escape it as `$$`.
fn literal(value: &str) -> String {
    value.replace('$', "$$")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, required: bool, default: Option<&str>) -> EnvVar {
        EnvVar {
            name: name.into(),
            description: None,
            required,
            secret: true,
            default: default.map(str::to_owned),
        }
    }

    struct Answer;
    impl Prompter for Answer {
        fn can_ask(&self) -> bool {
            true
        }
        fn ask(&self, _: &str, _: &EnvVar) -> Result<String> {
            Ok("typed$ecret".into())
        }
    }

    #[test]
    fn sources_in_order_flag_existing_environment_default_prompt() {
        let vars = [
            var("A", true, None),
            var("B", true, None),
            var("C", true, None),
            var("D", false, Some("{data_dir}/x")),
            var("E", true, None),
            var("F", false, None),
        ];
        let given = [("A".to_owned(), "flag$1".to_owned()), ("EXTRA".to_owned(), "x".to_owned())];
        let existing = BTreeMap::from([("B".to_owned(), "kept".to_owned())]);
        let lookup = |k: &str| (k == "C").then(|| "secret-from-env".to_owned());
        let expand = |s: &str| s.replace("{data_dir}", "/d");
        let inputs = EnvInputs { given: &given, existing: &existing, lookup: &lookup, expand: &expand };
        let env = collect("pkg", &vars, &inputs, &Answer).unwrap();
        let want = [
            ("A", "flag$$1"),
            ("B", "kept"),
            ("C", "${C}"),
            ("D", "/d/x"),
            ("E", "typed$$ecret"),
            ("EXTRA", "x"),
        ];
        assert_eq!(env, want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        assert!(!env.values().any(|v| v.contains("secret-from-env")));
    }

    #[test]
    fn missing_required_values_fail_without_a_prompt() {
        let vars = [var("TOKEN", true, None)];
        let none = |_: &str| None;
        let id = |s: &str| s.to_owned();
        let inputs = EnvInputs { given: &[], existing: &BTreeMap::new(), lookup: &none, expand: &id };
        let err = collect("github", &vars, &inputs, &NoPrompt).unwrap_err().to_string();
        assert!(err.contains("--env TOKEN=") && err.contains("github needs TOKEN"), "{err}");
    }
}
