//! `spec.template`: minijinja templates over the parsed value, strict about missing keys, with
//! one fuel budget for all of a Secret's templates and their output held to the Secret's size.

use super::{MAX_SECRET_BYTES, RenderError, Rendering, lookup};
use minijinja::value::Serde;
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use std::collections::BTreeMap;
use std::io;
use zeroize::Zeroizing;

/// Work all templates of one Secret may do together, in minijinja fuel (about one per
/// instruction and one per 64 bytes of data made): tens of milliseconds and at most about 16 MiB.
/// Templates that fill in a connection string use a few hundred.
pub const TEMPLATE_FUEL: u64 = 250_000;

/// Renders each template into a key of `rendering`, which has parsed the value.
pub(super) fn render_templates(
    templates: &BTreeMap<String, String>,
    rendering: &mut Rendering<'_>,
) -> Result<(), RenderError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let mut fuel = TEMPLATE_FUEL;
    for (key, source) in templates {
        let field = format!("spec.template.data.{key}");
        // Read when rendering starts, so each template gets what the earlier ones left.
        env.set_fuel(Some(fuel));
        let compiled = env
            .template_from_str(source)
            .map_err(|e| error(&field, format!("does not parse: {}", e.kind())))?;
        let room = rendering.room.saturating_sub(key.len());
        let context = rendering.json("spec.template")?;
        let mut missing: Vec<String> = compiled
            .undeclared_variables(true)
            .into_iter()
            .filter(|path| lookup(context, path).is_none() && !is_global(&env, path))
            .collect();
        if !missing.is_empty() {
            missing.sort();
            return Err(error(&field, format!("the secret has no property {}", missing.join(", "))));
        }
        let mut output = Capped { room, ..Capped::default() };
        let used = match compiled.render_captured_to(Serde(context), &mut output) {
            Ok(captured) => captured.state().fuel_levels().map_or(0, |(used, _)| used),
            Err(_) if output.refused => return Err(too_large(&field)),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => {
                return Err(error(
                    &field,
                    format!("exceeds the fuel limit of {TEMPLATE_FUEL} that a Secret's templates share"),
                ));
            }
            // Only the error kind and line: a render error's detail may quote what it rendered.
            Err(e) => {
                let line = e.line().map(|l| format!(" at line {l}")).unwrap_or_default();
                return Err(error(&field, format!("does not render: {}{line}", e.kind())));
            }
        };
        fuel = fuel.saturating_sub(used);
        let bytes = std::mem::take(&mut *output.buf);
        rendering.insert(&field, key.clone(), bytes).map_err(|_| too_large(&field))?;
    }
    Ok(())
}

fn error(field: &str, message: String) -> RenderError {
    RenderError::new("TemplateError", field.to_string(), message)
}

fn too_large(field: &str) -> RenderError {
    error(
        field,
        format!("the output would take the Secret past {MAX_SECRET_BYTES} bytes, the most a Secret holds"),
    )
}

fn is_global(env: &Environment<'_>, path: &str) -> bool {
    env.globals().any(|(name, _)| path.split('.').next() == Some(name))
}

/// Template output, refused past `room` bytes. It holds rendered values, so each buffer it
/// outgrows is wiped rather than freed as it is.
#[derive(Default)]
struct Capped {
    buf: Zeroizing<Vec<u8>>,
    room: usize,
    refused: bool,
}

impl io::Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if bytes.len() > self.room - self.buf.len() {
            self.refused = true;
            return Err(io::Error::other("past the Secret's size"));
        }
        let needed = self.buf.len() + bytes.len();
        if needed > self.buf.capacity() {
            let mut grown = Vec::with_capacity(needed.max(2 * self.buf.capacity()));
            grown.extend_from_slice(&self.buf);
            self.buf = Zeroizing::new(grown);
        }
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
