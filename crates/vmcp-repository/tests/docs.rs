//! The examples in `docs/PACKAGE_FORMAT.md` are valid packages: the documented format is the
//! one the code accepts.

use vmcp_repository::{InstallSpec, Manifest, Package};

const DOC: &str = include_str!("../../../docs/PACKAGE_FORMAT.md");

/// The body of the first fenced block of `lang`.
fn block(lang: &str) -> String {
    let start =
        DOC.find(&format!("```{lang}\n")).unwrap_or_else(|| panic!("no {lang} block")) + lang.len() + 4;
    let len = DOC[start..].find("```").expect("unclosed block");
    DOC[start..start + len].to_owned()
}

#[test]
fn the_documented_manifest_and_install_json_form_a_valid_package() {
    let manifest = Manifest::parse(&block("markdown")).expect("documented MANIFEST.md");
    assert_eq!((manifest.name.as_str(), manifest.version.as_str()), ("weather", "1.2.0"));
    assert_eq!(manifest.tags, ["weather", "api"]);
    let zeros = "0".repeat(64);
    let spec = InstallSpec::parse(&block("json").replace("<64 hex digits>", &zeros))
        .expect("documented install.json");
    let package = Package::from_parts(manifest, spec).expect("documented package");
    assert_eq!(package.versions(), ["1.2.0", "1.1.0"]);
    let kinds: Vec<String> =
        package.latest().install.methods.iter().map(|m| format!("{:?}", m.kind()).to_lowercase()).collect();
    assert_eq!(kinds, ["npm", "pypi", "cargo", "binary", "remote"]);
}
