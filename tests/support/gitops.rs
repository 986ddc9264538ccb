//! The two GitOps judges of our status: the Argo CD health checks shipped in
//! deploy/argocd/argocd-cm-health.yaml, run in Lua 5.4 as Argo CD runs them, and kstatus (the
//! library Flux uses) through the helper `tests/tools/build.sh` builds.

use mlua::{Lua, Table, Value as LuaValue};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The Argo CD health scripts, by `resource.customizations.health.<group>_<kind>` key.
pub fn health_scripts() -> BTreeMap<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/argocd/argocd-cm-health.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let config: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_value(config["data"].clone()).unwrap_or_else(|e| panic!("{path}: data: {e}"))
}

pub fn health_script(kind: &str) -> String {
    let key = format!("resource.customizations.health.dpo.dev_{kind}");
    health_scripts().remove(&key).unwrap_or_else(|| panic!("no {key} in the Argo CD health checks"))
}

fn to_lua(lua: &Lua, value: &Value) -> LuaValue {
    match value {
        Value::Null => LuaValue::Nil,
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => LuaValue::Integer(i),
            None => LuaValue::Number(n.as_f64().expect("a JSON number")),
        },
        Value::String(s) => LuaValue::String(lua.create_string(s).expect("Lua string")),
        Value::Array(items) => {
            let table = lua.create_table().expect("Lua table");
            for (i, item) in items.iter().enumerate() {
                table.set(i + 1, to_lua(lua, item)).expect("Lua array item");
            }
            LuaValue::Table(table)
        }
        Value::Object(fields) => {
            let table = lua.create_table().expect("Lua table");
            for (key, field) in fields {
                table.set(key.as_str(), to_lua(lua, field)).expect("Lua field");
            }
            LuaValue::Table(table)
        }
    }
}

/// Argo CD's health of `object`: its kind's script with the `obj` global; the chunk returns hs.
pub fn argo_health(object: &Value) -> (String, String) {
    let kind = object["kind"].as_str().expect("an object with a kind");
    let lua = Lua::new();
    lua.globals().set("obj", to_lua(&lua, object)).expect("set obj");
    let hs: Table = lua.load(health_script(kind)).eval().unwrap_or_else(|e| panic!("{kind} health: {e}"));
    (hs.get("status").expect("hs.status"), hs.get("message").expect("hs.message"))
}

/// The kstatus helper, built (or found in its cache) by `tests/tools/build.sh`.
fn kstatus_binary() -> &'static str {
    static BINARY: OnceLock<String> = OnceLock::new();
    BINARY.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/build.sh");
        let out = Command::new(script).output().expect("run tests/tools/build.sh");
        assert!(out.status.success(), "tests/tools/build.sh: {}", String::from_utf8_lossy(&out.stderr));
        let dir = String::from_utf8(out.stdout).expect("build.sh prints a directory");
        format!("{}/kstatus", dir.trim())
    })
}

/// kstatus' verdict on each object: its status (`Current`, `InProgress`, `Failed`, ...) and
/// message.
pub fn kstatus(objects: &[Value]) -> Vec<(String, String)> {
    let mut child = Command::new(kstatus_binary())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kstatus");
    let mut stdin = child.stdin.take().expect("kstatus stdin");
    for object in objects {
        writeln!(stdin, "{object}").expect("write to kstatus");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("run kstatus");
    assert!(out.status.success(), "kstatus: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("kstatus output");
    let verdicts: Vec<(String, String)> = text
        .lines()
        .map(|line| {
            let (status, message) = line.split_once(' ').unwrap_or((line, ""));
            (status.to_string(), message.to_string())
        })
        .collect();
    assert_eq!(verdicts.len(), objects.len(), "one kstatus verdict per object: {text}");
    verdicts
}
