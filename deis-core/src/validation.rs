//! Deis v1 validation rules, as pure functions.
//!
//! Every function here checks one kind of user input (an app id, a config key, a domain,
//! an SSH key…) and returns a [`ValidationError`] naming the field, a stable snake_case
//! rule and a sentence for people. Nothing here does I/O, and nothing uses regular
//! expressions: every pattern is written out as character checks.
//!
//! The rules follow the Deis v1 controller (`controller/api/serializers.py` and
//! `models.py`). Where this module deliberately differs, the function's documentation
//! says so; in short:
//!
//! - app ids may not start or end with a dash (Deis allowed it; Docker and DNS do not
//!   like it);
//! - usernames follow the modern Django limit of 150 characters, ASCII only (the Django of
//!   Deis v1 allowed 30);
//! - config values: `true`/`false` become `"true"`/`"false"` (Python gave `"True"`), NUL bytes
//!   are refused, and the `HEALTHCHECK_*`, `DEIS_WHITELIST` and `PORT` values are checked
//!   (Deis took any string);
//! - memory and cpu limits check the whole process type, not only a `^[a-z]+` prefix;
//! - process types may contain digits (Deis's fleet job-name parser did not accept them);
//! - the `xip.io` bypass of the domain rules is dropped: such domains are checked like any
//!   other;
//! - scale counts must be JSON integers or strings of digits and at most 10 000
//!   (Deis ran Python's `int()` on them and had no upper limit);
//! - SSH keys must carry a supported algorithm whose name matches the decoded blob (Deis
//!   only checked that the second field was base64).

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use md5::{Digest, Md5};
use serde_json::Value;

use crate::error::ValidationError;

/// App ids that nobody may take by default: `deis` is the controller's own subdomain.
pub const DEFAULT_RESERVED_APP_IDS: &[&str] = &["deis"];

/// The longest app id, in characters.
pub const APP_ID_MAX_LEN: usize = 64;

/// The longest username, in characters (Django's limit since 1.10).
pub const USERNAME_MAX_LEN: usize = 150;

/// The longest email address, in characters (RFC 5321's path limit less the brackets).
pub const EMAIL_MAX_LEN: usize = 254;

/// The longest password, in bytes.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// The longest config key, in characters.
pub const CONFIG_KEY_MAX_LEN: usize = 256;

/// The longest process type, in characters (one DNS label).
pub const PROCESS_TYPE_MAX_LEN: usize = 63;

/// The largest CPU share value a limit may set.
pub const CPU_SHARES_MAX: u32 = 1024;

/// The longest domain, in characters, after normalization.
pub const DOMAIN_MAX_LEN: usize = 255;

/// The longest label of a domain, in characters.
pub const DOMAIN_LABEL_MAX_LEN: usize = 63;

/// The largest number of containers that one process type may be scaled to.
pub const SCALE_MAX_PER_TYPE: u32 = 10_000;

/// The longest SSH key name, in characters.
pub const KEY_NAME_MAX_LEN: usize = 128;

/// The longest SSH public key line, in bytes (a 16384-bit RSA key is about 2.8 KiB).
pub const SSH_PUBLIC_KEY_MAX_LEN: usize = 16 * 1024;

/// The SSH public key algorithms that [`ssh_public_key`] accepts.
pub const SSH_KEY_ALGORITHMS: &[&str] = &[
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// The PEM labels that [`pem_private_key`] accepts.
pub const PRIVATE_KEY_PEM_LABELS: &[&str] = &["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];

fn err(field: &str, rule: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError::new(field, rule, message)
}

/// Moves an error raised for one field onto another, keeping its rule and sentence.
fn refield(mut e: ValidationError, field: &str) -> ValidationError {
    e.field = field.to_string();
    e
}

/// Quotes user input for a message, escaping control characters and cutting long values.
fn shown(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{:?}…", cut)
    }
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn all_ascii_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Checks an app id: 1 to 64 of `[a-z0-9-]`, no leading or trailing dash, not reserved.
///
/// Deis v1 allowed leading and trailing dashes; refusing them is a deliberate tightening,
/// because the id becomes a DNS label (`<id>.<domain>`) and part of Docker names. The
/// reserved names are compared case-insensitively; pass [`DEFAULT_RESERVED_APP_IDS`] or the
/// cluster's configured subdomain.
pub fn app_id(id: &str, reserved: &[&str]) -> Result<(), ValidationError> {
    const F: &str = "id";
    if id.is_empty() {
        return Err(err(F, "empty", "App IDs may not be empty."));
    }
    if id.chars().count() > APP_ID_MAX_LEN {
        return Err(err(
            F,
            "too_long",
            format!("App IDs may be at most {APP_ID_MAX_LEN} characters long."),
        ));
    }
    if !id.chars().all(|c| is_lower_alnum(c) || c == '-') {
        return Err(err(
            F,
            "invalid_characters",
            format!(
                "App IDs can only contain [a-z0-9-] (lowercase letters, digits and dashes), got {}.",
                shown(id)
            ),
        ));
    }
    if id.starts_with('-') {
        return Err(err(F, "leading_dash", "App IDs may not start with a dash."));
    }
    if id.ends_with('-') {
        return Err(err(F, "trailing_dash", "App IDs may not end with a dash."));
    }
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(id)) {
        return Err(err(
            F,
            "reserved",
            format!("{} is a reserved name.", shown(id)),
        ));
    }
    Ok(())
}

/// Checks a username by Django's rules: 1 to 150 ASCII letters, digits and `@.+-_`.
pub fn username(name: &str) -> Result<(), ValidationError> {
    const F: &str = "username";
    if name.is_empty() {
        return Err(err(F, "empty", "Usernames may not be empty."));
    }
    if name.chars().count() > USERNAME_MAX_LEN {
        return Err(err(
            F,
            "too_long",
            format!("Usernames may be at most {USERNAME_MAX_LEN} characters long."),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'))
    {
        return Err(err(
            F,
            "invalid_characters",
            "Usernames may only contain ASCII letters, digits and @/./+/-/_ characters.",
        ));
    }
    Ok(())
}

/// Checks an email address: required, at most 254 characters, no whitespace, one `@`, and a
/// non-empty local part before a dotted domain.
pub fn email(email: &str) -> Result<(), ValidationError> {
    const F: &str = "email";
    if email.is_empty() {
        return Err(err(F, "empty", "An email address is required."));
    }
    if email.chars().count() > EMAIL_MAX_LEN {
        return Err(err(
            F,
            "too_long",
            format!("Email addresses may be at most {EMAIL_MAX_LEN} characters long."),
        ));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(
            F,
            "whitespace",
            "Email addresses may not contain whitespace or control characters.",
        ));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(err(F, "missing_at", "Enter a valid email address (no @)."));
    };
    if domain.contains('@') {
        return Err(err(
            F,
            "multiple_at",
            "Enter a valid email address (more than one @).",
        ));
    }
    if local.is_empty() {
        return Err(err(
            F,
            "empty_local_part",
            "Enter a valid email address (nothing before the @).",
        ));
    }
    if domain.is_empty() || !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return Err(err(
            F,
            "invalid_domain",
            "Enter a valid email address (the part after the @ must be a dotted domain).",
        ));
    }
    Ok(())
}

/// Checks a password: required and at most 1024 bytes; any characters are allowed.
pub fn password(pw: &str) -> Result<(), ValidationError> {
    const F: &str = "password";
    if pw.is_empty() {
        return Err(err(F, "empty", "A password is required."));
    }
    if pw.len() > PASSWORD_MAX_BYTES {
        return Err(err(
            F,
            "too_long",
            format!("Passwords may be at most {PASSWORD_MAX_BYTES} bytes long."),
        ));
    }
    Ok(())
}

/// Checks a config key: `^[a-z_]+[a-z0-9_]*$` ignoring case, at most 256 characters.
pub fn config_key(key: &str) -> Result<(), ValidationError> {
    const F: &str = "values";
    if key.is_empty() {
        return Err(err(F, "empty", "Config keys may not be empty."));
    }
    if key.chars().count() > CONFIG_KEY_MAX_LEN {
        return Err(err(
            F,
            "too_long",
            format!("Config keys may be at most {CONFIG_KEY_MAX_LEN} characters long."),
        ));
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(err(
            F,
            "invalid_characters",
            format!(
                "Config keys must start with a letter or underscore and only contain [A-z0-9_], got {}.",
                shown(key)
            ),
        ));
    }
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(err(
            F,
            "leading_digit",
            format!(
                "Config keys must start with a letter or underscore, got {}.",
                shown(key)
            ),
        ));
    }
    Ok(())
}

/// Checks one config entry and returns its value as a string, or `None` when it unsets the key.
///
/// The key is checked with [`config_key`] first (Deis checked keys even when unsetting).
/// `null` unsets; strings are kept as they are; numbers and booleans become their JSON text
/// (`1`, `2.5`, `true`; Deis's Python gave `True`); arrays and objects are refused. Values may
/// not contain NUL bytes (they end up in process environments). A few keys, matched
/// ignoring case, carry meaning and are checked, which Deis v1 did not do:
///
/// - `HEALTHCHECK_URL`: a path starting with `/`, without whitespace;
/// - `HEALTHCHECK_INITIAL_DELAY`: a non-negative integer of seconds;
/// - `HEALTHCHECK_TIMEOUT` and `HEALTHCHECK_INTERVAL`: an integer of seconds, at least 1;
/// - `DEIS_WHITELIST`: comma-separated `ip[:label]` or `cidr[:label]` entries, IPv4 or IPv6.
///   An IPv6 entry with a label may be bracketed (`[2001:db8::/32]:office`); unbracketed,
///   the whole entry is first read as an address, so `2001:db8::1:cafe` is an address, not
///   `2001:db8::1` labelled `cafe`. Labels are 1 to 63 of `[A-Za-z0-9._-]`;
/// - `PORT`: an integer from 1 to 65535.
pub fn config_value(key: &str, value: &Value) -> Result<Option<String>, ValidationError> {
    const F: &str = "values";
    config_key(key)?;
    let s = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(_) | Value::Object(_) => {
            return Err(err(
                F,
                "invalid_type",
                format!(
                    "The value of {key} must be a string, a number, a boolean or null, not a list or an object."
                ),
            ))
        }
    };
    if s.contains('\0') {
        return Err(err(
            F,
            "nul_byte",
            format!("The value of {key} may not contain NUL bytes."),
        ));
    }
    match key.to_ascii_uppercase().as_str() {
        "HEALTHCHECK_URL" => healthcheck_url(key, &s)?,
        "HEALTHCHECK_INITIAL_DELAY" => {
            integer_at_least(key, &s, 0)?;
        }
        "HEALTHCHECK_TIMEOUT" | "HEALTHCHECK_INTERVAL" => {
            integer_at_least(key, &s, 1)?;
        }
        "DEIS_WHITELIST" => whitelist(key, &s)?,
        "PORT" => {
            let port = integer_at_least(key, &s, 1)?;
            if port > u32::from(u16::MAX) {
                return Err(err(
                    F,
                    "out_of_range",
                    format!("{key} must be a port number from 1 to 65535, got {port}."),
                ));
            }
        }
        _ => {}
    }
    Ok(Some(s))
}

/// Checks a `HEALTHCHECK_URL` value: a path starting with `/`, without whitespace.
fn healthcheck_url(key: &str, s: &str) -> Result<(), ValidationError> {
    if !s.starts_with('/') || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(
            "values",
            "invalid_healthcheck_url",
            format!(
                "{key} must be a path starting with / and without whitespace, got {}.",
                shown(s)
            ),
        ));
    }
    Ok(())
}

/// Parses a config value that must be a plain decimal integer of at least `min`.
fn integer_at_least(key: &str, s: &str, min: u32) -> Result<u32, ValidationError> {
    const F: &str = "values";
    if !all_ascii_digits(s) {
        return Err(err(
            F,
            "not_an_integer",
            format!(
                "{key} must be a whole number written with digits only, got {}.",
                shown(s)
            ),
        ));
    }
    let n: u32 = s.parse().map_err(|_| {
        err(
            F,
            "out_of_range",
            format!("{key} is too large, got {}.", shown(s)),
        )
    })?;
    if n < min {
        return Err(err(
            F,
            "out_of_range",
            format!("{key} must be at least {min}, got {n}."),
        ));
    }
    Ok(n)
}

/// Checks a `DEIS_WHITELIST` value: comma-separated `ip[:label]` or `cidr[:label]` entries.
fn whitelist(key: &str, s: &str) -> Result<(), ValidationError> {
    const F: &str = "values";
    if s.trim().is_empty() {
        return Err(err(
            F,
            "empty",
            format!("{key} must list at least one address; unset it to allow everyone."),
        ));
    }
    for entry in s.split(',') {
        if let Err(why) = whitelist_entry(entry.trim()) {
            return Err(err(
                F,
                "invalid_whitelist_entry",
                format!(
                    "{key} entries must be ip[:label] or cidr[:label]; {} {why}.",
                    shown(entry.trim())
                ),
            ));
        }
    }
    Ok(())
}

fn whitelist_entry(entry: &str) -> Result<(), &'static str> {
    if entry.is_empty() {
        return Err("is empty");
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or("has no closing ]")?;
        network(inner)?;
        return match after {
            "" => Ok(()),
            _ => match after.strip_prefix(':') {
                Some(label) => whitelist_label(label),
                None => Err("has text after ] that is not a :label"),
            },
        };
    }
    if network(entry).is_ok() {
        return Ok(());
    }
    match entry.rsplit_once(':') {
        Some((net, label)) => {
            network(net)?;
            whitelist_label(label)
        }
        None => network(entry),
    }
}

fn network(s: &str) -> Result<(), &'static str> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| "is not an IP address")?;
    if let Some(p) = prefix {
        if !all_ascii_digits(p) || p.len() > 3 {
            return Err("has a CIDR prefix that is not a number");
        }
        let bits: u32 = p
            .parse()
            .map_err(|_| "has a CIDR prefix that is not a number")?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err("has a CIDR prefix out of range");
        }
    }
    Ok(())
}

fn whitelist_label(label: &str) -> Result<(), &'static str> {
    if label.is_empty() || label.chars().count() > 63 {
        return Err("has a label that is empty or longer than 63 characters");
    }
    if !label
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("has a label with characters other than [A-Za-z0-9._-]");
    }
    Ok(())
}

/// Checks a Procfile process type: 1 to 63 of `[a-z0-9_-]`, starting with a letter, with
/// single `-`/`_` separators and none at the end.
///
/// Deis v1 was looser in places (URL routes took `[-_\w.]+`, limits only `^[a-z]+`) and
/// stricter in one: its fleet job-name parser took `[a-z-_]+`, so digits broke there. Digits
/// are allowed here.
pub fn process_type(name: &str) -> Result<(), ValidationError> {
    const F: &str = "type";
    if name.is_empty() {
        return Err(err(F, "empty", "Process types may not be empty."));
    }
    if name.chars().count() > PROCESS_TYPE_MAX_LEN {
        return Err(err(
            F,
            "too_long",
            format!("Process types may be at most {PROCESS_TYPE_MAX_LEN} characters long."),
        ));
    }
    if !name
        .chars()
        .all(|c| is_lower_alnum(c) || c == '-' || c == '_')
    {
        return Err(err(
            F,
            "invalid_characters",
            format!(
                "Process types may only contain lowercase letters, digits, dashes and underscores, got {}.",
                shown(name)
            ),
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(err(
            F,
            "invalid_start",
            format!(
                "Process types must start with a letter, got {}.",
                shown(name)
            ),
        ));
    }
    if name.ends_with(['-', '_']) {
        return Err(err(
            F,
            "trailing_separator",
            format!(
                "Process types may not end with a dash or underscore, got {}.",
                shown(name)
            ),
        ));
    }
    let bytes = name.as_bytes();
    if bytes
        .windows(2)
        .any(|w| matches!(w[0], b'-' | b'_') && matches!(w[1], b'-' | b'_'))
    {
        return Err(err(
            F,
            "consecutive_separators",
            format!(
                "Process types may not have two dashes or underscores in a row, got {}.",
                shown(name)
            ),
        ));
    }
    Ok(())
}

/// Checks a memory limit: a valid process type and a value such as `512M`, `1GB` or `64k`.
///
/// The value must match `^[0-9]+(MB|KB|GB|[BKMG])$` ignoring case, as in Deis, and must not
/// overflow 64 bits of bytes. Deis only checked that the type started with `[a-z]+`; here the
/// whole type must pass [`process_type`] (the error is reported under `memory`).
pub fn memory_limit(process_type: &str, value: &str) -> Result<(), ValidationError> {
    const F: &str = "memory";
    self::process_type(process_type).map_err(|e| refield(e, F))?;
    if value.is_empty() {
        return Err(err(
            F,
            "empty",
            format!("The memory limit of {process_type} may not be empty."),
        ));
    }
    match split_memory(value) {
        None => Err(err(
            F,
            "invalid_format",
            format!(
                "Memory limit format: <number><unit>, where unit = B, K, M or G (or KB, MB, GB), got {}.",
                shown(value)
            ),
        )),
        Some((digits, unit)) => match digits.parse::<u64>().ok().and_then(|n| n.checked_mul(unit)) {
            Some(_) => Ok(()),
            None => Err(err(
                F,
                "out_of_range",
                format!("The memory limit {} is too large.", shown(value)),
            )),
        },
    }
}

/// Splits a memory value into its digits and the byte count of its unit, if well formed.
fn split_memory(value: &str) -> Option<(&str, u64)> {
    let end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    if end == 0 {
        return None;
    }
    let (digits, unit) = value.split_at(end);
    let multiplier = match unit.to_ascii_uppercase().as_str() {
        "B" => 1,
        "K" | "KB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        "G" | "GB" => 1 << 30,
        _ => return None,
    };
    Some((digits, multiplier))
}

/// Converts a memory value such as `512M` into bytes, or `None` if it is malformed or overflows.
///
/// Units are binary and case-insensitive: `B` = 1, `K`/`KB` = 1024, `M`/`MB` = 1024², `G`/`GB` = 1024³.
pub fn parse_memory_bytes(value: &str) -> Option<u64> {
    let (digits, unit) = split_memory(value)?;
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// Checks a CPU limit and returns its shares: a valid process type and an integer from 0 to 1024,
/// given as a JSON number or a string of digits.
///
/// As with [`memory_limit`], the whole type must pass [`process_type`]; fractional numbers
/// are refused.
pub fn cpu_limit(process_type: &str, value: &Value) -> Result<u32, ValidationError> {
    const F: &str = "cpu";
    self::process_type(process_type).map_err(|e| refield(e, F))?;
    let out_of_range = || {
        err(
            F,
            "out_of_range",
            format!("CPU shares of {process_type} must be an integer from 0 to {CPU_SHARES_MAX}."),
        )
    };
    let not_an_integer = || {
        err(
            F,
            "not_an_integer",
            format!(
                "CPU shares of {process_type} must be a whole number from 0 to {CPU_SHARES_MAX}."
            ),
        )
    };
    let shares: u64 = match value {
        Value::Number(n) => match n.as_u64() {
            Some(v) => v,
            None if n.is_i64() => return Err(out_of_range()),
            None => return Err(not_an_integer()),
        },
        Value::String(s) => {
            if !all_ascii_digits(s) {
                return Err(not_an_integer());
            }
            s.parse().map_err(|_| out_of_range())?
        }
        _ => {
            return Err(err(
                F,
                "invalid_type",
                format!("CPU shares of {process_type} must be a number or a string of digits."),
            ))
        }
    };
    if shares > u64::from(CPU_SHARES_MAX) {
        return Err(out_of_range());
    }
    Ok(shares as u32)
}

/// Checks a tag: a key of ASCII letters only and a value of ASCII word characters (`[A-Za-z0-9_]`).
pub fn tag(key: &str, value: &str) -> Result<(), ValidationError> {
    const F: &str = "tags";
    if key.is_empty() {
        return Err(err(F, "empty", "Tag keys may not be empty."));
    }
    if !key.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(err(
            F,
            "invalid_characters",
            format!("Tag keys can only contain letters, got {}.", shown(key)),
        ));
    }
    if value.is_empty() {
        return Err(err(
            F,
            "empty",
            format!("The value of tag {key} may not be empty."),
        ));
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(err(
            F,
            "invalid_characters",
            format!(
                "Tag values can only contain letters, digits and underscores, got {}.",
                shown(value)
            ),
        ));
    }
    Ok(())
}

/// Checks a custom domain and returns it normalized: ASCII-lowercased, one trailing dot removed.
///
/// Rules, as in Deis v1: at most 255 characters; no wildcard (`*` anywhere); every label 1
/// to 63 of `[a-z0-9-]` with no leading or trailing dash, no `--` and not all digits; a
/// single-label name may not contain digits. The `--` rule means punycode (`xn--`) names are
/// refused, as in Deis. Deis skipped every check for names containing `xip.io`; that bypass
/// is deliberately dropped.
pub fn domain(domain: &str) -> Result<String, ValidationError> {
    const F: &str = "domain";
    let lowered = domain.to_ascii_lowercase();
    let norm = lowered.strip_suffix('.').unwrap_or(&lowered);
    if norm.is_empty() {
        return Err(err(F, "empty", "Domains may not be empty."));
    }
    if norm.chars().count() > DOMAIN_MAX_LEN {
        return Err(err(
            F,
            "too_long",
            format!("Domains may be at most {DOMAIN_MAX_LEN} characters long."),
        ));
    }
    if norm.contains('*') {
        return Err(err(
            F,
            "wildcard",
            "Adding a wildcard domain is not supported.",
        ));
    }
    let labels: Vec<&str> = norm.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(err(
                F,
                "empty_label",
                format!(
                    "Domain {} has an empty label (a leading dot or two dots in a row).",
                    shown(norm)
                ),
            ));
        }
        if label.chars().count() > DOMAIN_LABEL_MAX_LEN {
            return Err(err(
                F,
                "label_too_long",
                format!("Domain labels may be at most {DOMAIN_LABEL_MAX_LEN} characters long."),
            ));
        }
        if !label.chars().all(|c| is_lower_alnum(c) || c == '-') {
            return Err(err(
                F,
                "invalid_characters",
                format!(
                    "Domain labels may only contain letters, digits and dashes, got {}.",
                    shown(label)
                ),
            ));
        }
        if label.starts_with('-') {
            return Err(err(
                F,
                "leading_dash",
                format!(
                    "Domain labels may not start with a dash, got {}.",
                    shown(label)
                ),
            ));
        }
        if label.ends_with('-') {
            return Err(err(
                F,
                "trailing_dash",
                format!(
                    "Domain labels may not end with a dash, got {}.",
                    shown(label)
                ),
            ));
        }
        if label.contains("--") {
            return Err(err(
                F,
                "double_dash",
                format!("Domain labels may not contain --, got {}.", shown(label)),
            ));
        }
        if label.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                F,
                "numeric_label",
                format!("Domain labels may not be all digits, got {}.", shown(label)),
            ));
        }
    }
    if labels.len() == 1 && norm.bytes().any(|b| b.is_ascii_digit()) {
        return Err(err(
            F,
            "single_label_digits",
            format!(
                "A domain of one label may not contain digits, got {}.",
                shown(norm)
            ),
        ));
    }
    Ok(norm.to_string())
}

/// Checks a scale request (`{"web": 3, "worker": "1"}`) and returns the counts by type.
///
/// Every key must be a valid [`process_type`] (errors under `structure`); every value a
/// JSON integer or a string of digits (Deis also accepted what Python's `int()` accepts,
/// such as `2.5`), at most 10 000 (Deis had no upper limit); errors name the type as field.
/// An empty body is refused. Whether the types exist in the app's Procfile is for the caller.
pub fn scale(
    body: &serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, u32>, ValidationError> {
    if body.is_empty() {
        return Err(err(
            "structure",
            "empty",
            "Scaling needs at least one process type, e.g. {\"web\": 1}.",
        ));
    }
    let mut out = BTreeMap::new();
    for (kind, value) in body {
        process_type(kind).map_err(|e| refield(e, "structure"))?;
        let invalid = || {
            err(
                kind,
                "invalid_format",
                format!(
                    "Invalid scaling format: the count of {kind} must be a non-negative integer, got {value}."
                ),
            )
        };
        let too_large = || {
            err(
                kind,
                "too_large",
                format!(
                    "Invalid scaling format: {kind} may be scaled to at most {SCALE_MAX_PER_TYPE}."
                ),
            )
        };
        let count: u64 = match value {
            Value::Number(n) => n.as_u64().ok_or_else(invalid)?,
            Value::String(s) if all_ascii_digits(s) => s.parse().map_err(|_| too_large())?,
            _ => return Err(invalid()),
        };
        if count > u64::from(SCALE_MAX_PER_TYPE) {
            return Err(too_large());
        }
        out.insert(kind.clone(), count as u32);
    }
    Ok(out)
}

/// Checks a rollback target against the app's current release version and returns it.
///
/// The target must be at least 1 and exist, that is at most `current`. Rolling back to the
/// current version is allowed (it makes a new release with the same build and config).
pub fn rollback_target(target: u64, current: u64) -> Result<u64, ValidationError> {
    const F: &str = "version";
    if target < 1 {
        return Err(err(
            F,
            "too_small",
            "Version cannot be below 1; there is no release before v1.",
        ));
    }
    if target > current {
        return Err(err(
            F,
            "not_found",
            format!("Release v{target} does not exist; the latest is v{current}."),
        ));
    }
    Ok(target)
}

/// Checks an SSH key name (such as `alice@laptop`): 1 to 128 characters, no whitespace,
/// control characters or `/`, and not `.` or `..`.
///
/// The name appears in URLs (`/v1/keys/<id>`), hence the refusal of `/`, `.` and `..`.
pub fn key_name(id: &str) -> Result<(), ValidationError> {
    const F: &str = "id";
    if id.is_empty() {
        return Err(err(F, "empty", "Key names may not be empty."));
    }
    if id.chars().count() > KEY_NAME_MAX_LEN {
        return Err(err(
            F,
            "too_long",
            format!("Key names may be at most {KEY_NAME_MAX_LEN} characters long."),
        ));
    }
    if id.chars().any(char::is_whitespace) {
        return Err(err(
            F,
            "whitespace",
            "Key names may not contain whitespace.",
        ));
    }
    if id.chars().any(|c| c.is_control() || c == '/') {
        return Err(err(
            F,
            "invalid_characters",
            "Key names may not contain / or control characters.",
        ));
    }
    if id == "." || id == ".." {
        return Err(err(F, "reserved", "Key names may not be . or .."));
    }
    Ok(())
}

/// What [`ssh_public_key`] learned from a valid public key line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    /// The key algorithm, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// The MD5 fingerprint of the key blob as lowercase colon-separated hex, as Deis stored it.
    pub fingerprint: String,
    /// The comment after the key, usually `user@host`, if there is one.
    pub comment: Option<String>,
}

/// Checks an OpenSSH public key line (`<algorithm> <base64> [comment]`) and returns its parts.
///
/// The algorithm must be one of [`SSH_KEY_ALGORITHMS`], the base64 must decode, and the
/// decoded blob must start with the algorithm name as a length-prefixed string followed by
/// key material. Deis v1 only checked the base64; the other checks are a tightening.
/// Leading `authorized_keys` options are not supported, and the line may be at most 16 KiB.
pub fn ssh_public_key(public: &str) -> Result<PublicKeyInfo, ValidationError> {
    const F: &str = "public";
    let line = public.trim();
    if line.is_empty() {
        return Err(err(F, "empty", "The public key may not be empty."));
    }
    if line.len() > SSH_PUBLIC_KEY_MAX_LEN {
        return Err(err(
            F,
            "too_long",
            format!("Public keys may be at most {SSH_PUBLIC_KEY_MAX_LEN} bytes long."),
        ));
    }
    if line.contains(['\n', '\r']) {
        return Err(err(
            F,
            "multiple_lines",
            "Give exactly one public key, on one line.",
        ));
    }
    let (algorithm, rest) = split_token(line);
    let (encoded, rest) = split_token(rest);
    let comment = rest.trim();
    if !SSH_KEY_ALGORITHMS.contains(&algorithm) {
        return Err(err(
            F,
            "unsupported_algorithm",
            format!(
                "Public keys must start with one of {}, got {}.",
                SSH_KEY_ALGORITHMS.join(", "),
                shown(algorithm)
            ),
        ));
    }
    if encoded.is_empty() {
        return Err(err(
            F,
            "invalid_format",
            "Public keys look like '<algorithm> <base64> [comment]'; the base64 part is missing.",
        ));
    }
    let blob = BASE64.decode(encoded).map_err(|e| {
        err(
            F,
            "invalid_base64",
            format!("The key data is not valid base64: {e}."),
        )
    })?;
    let name = blob
        .get(..4)
        .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize)
        .and_then(|n| blob.get(4..4usize.checked_add(n)?));
    let Some(name) = name else {
        return Err(err(
            F,
            "invalid_blob",
            "The key data is not an SSH public key blob.",
        ));
    };
    if name != algorithm.as_bytes() {
        return Err(err(
            F,
            "algorithm_mismatch",
            format!(
                "The key data is for {}, but the line says {algorithm}.",
                shown(&String::from_utf8_lossy(name))
            ),
        ));
    }
    if blob.len() == 4 + name.len() {
        return Err(err(
            F,
            "invalid_blob",
            "The key data has an algorithm name but no key.",
        ));
    }
    if comment.chars().any(char::is_control) {
        return Err(err(
            F,
            "invalid_characters",
            "The key comment may not contain control characters.",
        ));
    }
    Ok(PublicKeyInfo {
        algorithm: algorithm.to_string(),
        fingerprint: md5_fingerprint(&blob),
        comment: (!comment.is_empty()).then(|| comment.to_string()),
    })
}

/// Splits off the first whitespace-separated token, returning it and the rest.
fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

fn md5_fingerprint(blob: &[u8]) -> String {
    let digest = Md5::digest(blob);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(":")
}

/// Checks a certificate's common name: no `*` (no wildcard certificates, as in Deis), and
/// otherwise a valid [`domain`]; errors are reported under `common_name`.
pub fn certificate_common_name(cn: &str) -> Result<(), ValidationError> {
    const F: &str = "common_name";
    if cn.is_empty() {
        return Err(err(F, "empty", "The common name may not be empty."));
    }
    if cn.contains('*') {
        return Err(err(
            F,
            "wildcard",
            "Wildcard certificates are not supported.",
        ));
    }
    domain(cn).map(|_| ()).map_err(|e| refield(e, F))
}

/// Checks that `pem` holds at least one `-----BEGIN <label>-----` … `-----END <label>-----`
/// block and that every such block's body is valid base64 once whitespace is removed.
///
/// This is a shape check only; it does not parse the DER inside. Errors name `field`.
pub fn pem_block_present(pem: &str, label: &str, field: &str) -> Result<(), ValidationError> {
    if pem.trim().is_empty() {
        return Err(err(
            field,
            "empty",
            format!("The {label} may not be empty."),
        ));
    }
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut rest = pem;
    let mut blocks = 0usize;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else {
            return Err(err(
                field,
                "unterminated_pem_block",
                format!("The PEM block has no '{end}' line."),
            ));
        };
        let body: String = after[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if body.is_empty() {
            return Err(err(
                field,
                "empty_pem_block",
                format!("The {label} PEM block is empty."),
            ));
        }
        if BASE64.decode(body.as_bytes()).is_err() {
            return Err(err(
                field,
                "invalid_base64",
                format!("The {label} PEM block is not valid base64."),
            ));
        }
        blocks += 1;
        rest = &after[stop + end.len()..];
    }
    if blocks == 0 {
        return Err(err(
            field,
            "missing_pem_block",
            format!("Expected a PEM '{begin}' block."),
        ));
    }
    Ok(())
}

/// Checks that `pem` holds exactly one unencrypted private key block labelled `PRIVATE KEY`,
/// `RSA PRIVATE KEY` or `EC PRIVATE KEY`, with a base64 body; errors are under `key`.
pub fn pem_private_key(pem: &str) -> Result<(), ValidationError> {
    const F: &str = "key";
    if pem.trim().is_empty() {
        return Err(err(F, "empty", "The private key may not be empty."));
    }
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || pem.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(err(
            F,
            "encrypted_key",
            "The private key is encrypted; give it without a passphrase.",
        ));
    }
    let mut found = 0usize;
    for label in PRIVATE_KEY_PEM_LABELS {
        let begin = format!("-----BEGIN {label}-----");
        let count = pem.matches(&begin).count();
        if count > 0 {
            pem_block_present(pem, label, F)?;
            found += count;
        }
    }
    match found {
        0 => Err(err(
            F,
            "missing_pem_block",
            format!(
                "Expected a PEM private key block labelled one of: {}.",
                PRIVATE_KEY_PEM_LABELS.join(", ")
            ),
        )),
        1 => Ok(()),
        _ => Err(err(
            F,
            "multiple_pem_blocks",
            "Give exactly one private key.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The rule an outcome broke, or `ok`.
    fn rule<T>(r: Result<T, ValidationError>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.rule,
        }
    }

    /// Runs a table of `(input, expected rule)` through `f`, reporting every mismatch at once.
    fn table<T>(
        name: &str,
        f: impl Fn(&str) -> Result<T, ValidationError>,
        cases: &[(&str, &str)],
    ) {
        let bad: Vec<String> = cases
            .iter()
            .filter_map(|(input, want)| {
                let got = rule(f(input));
                (got != *want).then(|| format!("{name}({input:?}): want {want}, got {got}"))
            })
            .collect();
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    fn long(c: char, n: usize) -> String {
        std::iter::repeat_n(c, n).collect()
    }

    #[test]
    fn app_id_rules() {
        let l64 = long('a', 64);
        let l65 = long('a', 65);
        table(
            "app_id",
            |s| app_id(s, DEFAULT_RESERVED_APP_IDS),
            &[
                ("myapp", "ok"),
                ("my-app-2", "ok"),
                ("a", "ok"),
                ("123", "ok"),
                ("a--b", "ok"),
                (&l64, "ok"),
                ("", "empty"),
                (&l65, "too_long"),
                ("MyApp", "invalid_characters"),
                ("my_app", "invalid_characters"),
                ("my app", "invalid_characters"),
                (" myapp", "invalid_characters"),
                ("myapp\n", "invalid_characters"),
                ("café", "invalid_characters"),
                ("../x", "invalid_characters"),
                ("a/b", "invalid_characters"),
                ("a.b", "invalid_characters"),
                ("-app", "leading_dash"),
                ("app-", "trailing_dash"),
                ("-", "leading_dash"),
                ("deis", "reserved"),
            ],
        );
        // The reserved list replaces the default and is compared ignoring case.
        assert_eq!(rule(app_id("deis", &["paas"])), "ok");
        assert_eq!(rule(app_id("paas", &["PAAS"])), "reserved");
        assert_eq!(rule(app_id("anything", &[])), "ok");
        // Length is checked before characters, so a long non-ASCII id reports too_long.
        let e = app_id(&long('é', 65), &[]).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("id", "too_long"));
    }

    #[test]
    fn username_rules() {
        let l150 = long('u', 150);
        let l151 = long('u', 151);
        table(
            "username",
            username,
            &[
                ("alice", "ok"),
                ("Alice.Smith+deis@example-1_x", "ok"),
                ("a", "ok"),
                (&l150, "ok"),
                ("", "empty"),
                (&l151, "too_long"),
                ("al ice", "invalid_characters"),
                (" alice", "invalid_characters"),
                ("alice\t", "invalid_characters"),
                ("josé", "invalid_characters"),
                ("../x", "invalid_characters"),
                ("a/b", "invalid_characters"),
                ("a:b", "invalid_characters"),
            ],
        );
        assert_eq!(username("").unwrap_err().field, "username");
    }

    #[test]
    fn email_rules() {
        let local = long('a', 64);
        let ok_254 = format!("{local}@{}.com", long('b', 254 - 64 - 1 - 4));
        let long_255 = format!("{local}@{}.com", long('b', 255 - 64 - 1 - 4));
        assert_eq!(ok_254.len(), 254);
        table(
            "email",
            email,
            &[
                ("alice@example.com", "ok"),
                ("a.b+tag@sub.example.co.uk", "ok"),
                ("ALICE@EXAMPLE.COM", "ok"),
                ("josé@exämple.com", "ok"),
                (&ok_254, "ok"),
                ("", "empty"),
                (&long_255, "too_long"),
                ("alice @example.com", "whitespace"),
                (" alice@example.com", "whitespace"),
                ("alice@example.com\n", "whitespace"),
                ("alice.example.com", "missing_at"),
                ("a@b@example.com", "multiple_at"),
                ("@example.com", "empty_local_part"),
                ("alice@", "invalid_domain"),
                ("alice@localhost", "invalid_domain"),
                ("alice@.example.com", "invalid_domain"),
                ("alice@example.com.", "invalid_domain"),
                ("alice@example..com", "invalid_domain"),
            ],
        );
    }

    #[test]
    fn password_rules() {
        let ok = long('p', 1024);
        let too_long = long('p', 1025);
        // 512 two-byte characters are 1024 bytes; one more is over.
        let multi_ok = long('é', 512);
        let multi_long = long('é', 513);
        table(
            "password",
            password,
            &[
                ("hunter2", "ok"),
                (" spaces and ünïcode ", "ok"),
                (&ok, "ok"),
                (&multi_ok, "ok"),
                ("", "empty"),
                (&too_long, "too_long"),
                (&multi_long, "too_long"),
            ],
        );
    }

    #[test]
    fn config_key_rules() {
        let l256 = long('K', 256);
        let l257 = long('K', 257);
        table(
            "config_key",
            config_key,
            &[
                ("FOO", "ok"),
                ("foo", "ok"),
                ("FOO_1", "ok"),
                ("_x", "ok"),
                ("_", "ok"),
                ("a1b2", "ok"),
                (&l256, "ok"),
                ("", "empty"),
                (&l257, "too_long"),
                ("1A", "leading_digit"),
                ("9", "leading_digit"),
                ("A-B", "invalid_characters"),
                ("A.B", "invalid_characters"),
                ("é", "invalid_characters"),
                (" A", "invalid_characters"),
                ("A ", "invalid_characters"),
                ("A=B", "invalid_characters"),
                ("../x", "invalid_characters"),
                ("a/b", "invalid_characters"),
            ],
        );
        assert_eq!(config_key("1A").unwrap_err().field, "values");
    }

    #[test]
    fn config_value_coercion() {
        assert_eq!(config_value("FOO", &Value::Null), Ok(None));
        assert_eq!(config_value("FOO", &json!("bar")), Ok(Some("bar".into())));
        assert_eq!(config_value("FOO", &json!("")), Ok(Some(String::new())));
        assert_eq!(
            config_value("FOO", &json!(" a b ")),
            Ok(Some(" a b ".into()))
        );
        assert_eq!(config_value("FOO", &json!("ünï")), Ok(Some("ünï".into())));
        assert_eq!(config_value("FOO", &json!(42)), Ok(Some("42".into())));
        assert_eq!(config_value("FOO", &json!(-3)), Ok(Some("-3".into())));
        assert_eq!(config_value("FOO", &json!(2.5)), Ok(Some("2.5".into())));
        assert_eq!(config_value("FOO", &json!(true)), Ok(Some("true".into())));
        assert_eq!(config_value("FOO", &json!(false)), Ok(Some("false".into())));
        assert_eq!(rule(config_value("FOO", &json!([1]))), "invalid_type");
        assert_eq!(rule(config_value("FOO", &json!({"a": 1}))), "invalid_type");
        assert_eq!(rule(config_value("FOO", &json!("a\0b"))), "nul_byte");
        // The key is checked too, even when unsetting.
        assert_eq!(rule(config_value("1BAD", &Value::Null)), "leading_digit");
        assert_eq!(rule(config_value("", &json!("x"))), "empty");
        let e = config_value("FOO", &json!([])).unwrap_err();
        assert_eq!(e.field, "values");
    }

    fn cv(key: &'static str) -> impl Fn(&str) -> Result<Option<String>, ValidationError> {
        move |v| config_value(key, &json!(v))
    }

    #[test]
    fn config_value_healthcheck() {
        table(
            "HEALTHCHECK_URL",
            cv("HEALTHCHECK_URL"),
            &[
                ("/", "ok"),
                ("/healthz", "ok"),
                ("/a/b?c=d", "ok"),
                ("", "invalid_healthcheck_url"),
                ("healthz", "invalid_healthcheck_url"),
                ("http://x/", "invalid_healthcheck_url"),
                ("../x", "invalid_healthcheck_url"),
                ("/a b", "invalid_healthcheck_url"),
                (" /a", "invalid_healthcheck_url"),
                ("/a\n", "invalid_healthcheck_url"),
            ],
        );
        // Special keys match ignoring case.
        assert_eq!(
            rule(config_value("healthcheck_url", &json!("x"))),
            "invalid_healthcheck_url"
        );
        table(
            "HEALTHCHECK_INITIAL_DELAY",
            cv("HEALTHCHECK_INITIAL_DELAY"),
            &[
                ("0", "ok"),
                ("30", "ok"),
                ("4294967295", "ok"),
                ("4294967296", "out_of_range"),
                ("", "not_an_integer"),
                ("-1", "not_an_integer"),
                ("+1", "not_an_integer"),
                ("1.5", "not_an_integer"),
                (" 1", "not_an_integer"),
                ("٣", "not_an_integer"),
                ("ten", "not_an_integer"),
            ],
        );
        for key in [
            "HEALTHCHECK_TIMEOUT",
            "HEALTHCHECK_INTERVAL",
            "Healthcheck_Timeout",
        ] {
            assert_eq!(rule(config_value(key, &json!("1"))), "ok", "{key}");
            assert_eq!(rule(config_value(key, &json!(5))), "ok", "{key}");
            assert_eq!(
                rule(config_value(key, &json!("0"))),
                "out_of_range",
                "{key}"
            );
            assert_eq!(
                rule(config_value(key, &json!(-1))),
                "not_an_integer",
                "{key}"
            );
            assert_eq!(
                rule(config_value(key, &json!(1.5))),
                "not_an_integer",
                "{key}"
            );
            assert_eq!(
                rule(config_value(key, &json!("x"))),
                "not_an_integer",
                "{key}"
            );
        }
        // Unsetting a special key needs no valid value.
        assert_eq!(config_value("HEALTHCHECK_TIMEOUT", &Value::Null), Ok(None));
    }

    #[test]
    fn config_value_port() {
        table(
            "PORT",
            cv("PORT"),
            &[
                ("1", "ok"),
                ("5000", "ok"),
                ("65535", "ok"),
                ("0", "out_of_range"),
                ("65536", "out_of_range"),
                ("99999999999", "out_of_range"),
                ("", "not_an_integer"),
                ("-80", "not_an_integer"),
                ("80 ", "not_an_integer"),
                ("http", "not_an_integer"),
            ],
        );
        assert_eq!(config_value("port", &json!(8080)), Ok(Some("8080".into())));
        // Other keys that merely contain PORT are not special.
        assert_eq!(rule(config_value("PORTS", &json!("x"))), "ok");
    }

    #[test]
    fn config_value_whitelist() {
        table(
            "DEIS_WHITELIST",
            cv("DEIS_WHITELIST"),
            &[
                ("10.0.0.1", "ok"),
                ("10.0.0.1:office", "ok"),
                ("10.0.0.0/8", "ok"),
                ("10.0.0.0/8:vpn", "ok"),
                ("0.0.0.0/0", "ok"),
                ("1.2.3.4,5.6.7.0/24:lab,9.9.9.9", "ok"),
                ("1.2.3.4, 5.6.7.8", "ok"),
                ("::1", "ok"),
                ("2001:db8::1", "ok"),
                ("2001:db8::/32", "ok"),
                ("2001:db8::/32:office", "ok"),
                ("2001:db8::1:office", "ok"),
                ("[2001:db8::1]", "ok"),
                ("[2001:db8::1]:cafe", "ok"),
                ("[2001:db8::/48]:my-lab_1.x", "ok"),
                ("::/0", "ok"),
                ("", "empty"),
                ("  ", "empty"),
                ("1.2.3.4,", "invalid_whitelist_entry"),
                (",1.2.3.4", "invalid_whitelist_entry"),
                ("1.2.3.4,,5.6.7.8", "invalid_whitelist_entry"),
                ("1.2.3", "invalid_whitelist_entry"),
                ("1.2.3.256", "invalid_whitelist_entry"),
                ("example.com", "invalid_whitelist_entry"),
                ("10.0.0.0/33", "invalid_whitelist_entry"),
                ("10.0.0.0/", "invalid_whitelist_entry"),
                ("10.0.0.0/-1", "invalid_whitelist_entry"),
                ("10.0.0.0/8/8", "invalid_whitelist_entry"),
                ("10.0.0.0/0008", "invalid_whitelist_entry"),
                ("2001:db8::/129", "invalid_whitelist_entry"),
                ("10.0.0.1:", "invalid_whitelist_entry"),
                ("10.0.0.1:my office", "invalid_whitelist_entry"),
                ("10.0.0.1:a;deny", "invalid_whitelist_entry"),
                ("10.0.0.1:ofis/ü", "invalid_whitelist_entry"),
                ("[2001:db8::1", "invalid_whitelist_entry"),
                ("[2001:db8::1]x", "invalid_whitelist_entry"),
                ("[nope]", "invalid_whitelist_entry"),
                ("1.2.3.4 5.6.7.8", "invalid_whitelist_entry"),
                ("../x", "invalid_whitelist_entry"),
            ],
        );
        let long_label = format!("1.2.3.4:{}", long('l', 64));
        assert_eq!(
            rule(config_value("DEIS_WHITELIST", &json!(long_label))),
            "invalid_whitelist_entry"
        );
        // The value is kept as given.
        assert_eq!(
            config_value("deis_whitelist", &json!("1.2.3.4, ::1")),
            Ok(Some("1.2.3.4, ::1".into()))
        );
    }

    #[test]
    fn process_type_rules() {
        let l63 = long('w', 63);
        let l64 = long('w', 64);
        table(
            "process_type",
            process_type,
            &[
                ("web", "ok"),
                ("cmd", "ok"),
                ("worker2", "ok"),
                ("background-worker", "ok"),
                ("queue_1", "ok"),
                ("a-b_c", "ok"),
                (&l63, "ok"),
                ("", "empty"),
                (&l64, "too_long"),
                ("Web", "invalid_characters"),
                ("web ", "invalid_characters"),
                ("web.1", "invalid_characters"),
                ("wéb", "invalid_characters"),
                ("../x", "invalid_characters"),
                ("a/b", "invalid_characters"),
                ("2web", "invalid_start"),
                ("-web", "invalid_start"),
                ("_web", "invalid_start"),
                ("web-", "trailing_separator"),
                ("web_", "trailing_separator"),
                ("a--b", "consecutive_separators"),
                ("a_-b", "consecutive_separators"),
            ],
        );
        assert_eq!(process_type("").unwrap_err().field, "type");
    }

    #[test]
    fn memory_rules() {
        table(
            "memory_limit",
            |v| memory_limit("web", v),
            &[
                ("512M", "ok"),
                ("512m", "ok"),
                ("512MB", "ok"),
                ("512mb", "ok"),
                ("1G", "ok"),
                ("1gb", "ok"),
                ("64k", "ok"),
                ("64KB", "ok"),
                ("1024B", "ok"),
                ("0M", "ok"),
                ("", "empty"),
                ("512", "invalid_format"),
                ("M", "invalid_format"),
                ("512 M", "invalid_format"),
                (" 512M", "invalid_format"),
                ("512T", "invalid_format"),
                ("512BB", "invalid_format"),
                ("512MiB", "invalid_format"),
                ("1.5G", "invalid_format"),
                ("-1M", "invalid_format"),
                ("٥M", "invalid_format"),
                ("99999999999999G", "out_of_range"),
                ("99999999999999999999B", "out_of_range"),
            ],
        );
        table(
            "memory_limit type",
            |t| memory_limit(t, "512M"),
            &[
                ("web", "ok"),
                ("worker-2", "ok"),
                ("", "empty"),
                ("Web", "invalid_characters"),
                ("../x", "invalid_characters"),
                ("1web", "invalid_start"),
            ],
        );
        let e = memory_limit("Web", "512M").unwrap_err();
        assert_eq!(e.field, "memory");
        assert_eq!(memory_limit("web", "x").unwrap_err().field, "memory");
    }

    #[test]
    fn memory_bytes() {
        let cases: &[(&str, Option<u64>)] = &[
            ("1B", Some(1)),
            ("1b", Some(1)),
            ("1K", Some(1024)),
            ("2kb", Some(2048)),
            ("1M", Some(1 << 20)),
            ("512MB", Some(512 << 20)),
            ("1G", Some(1 << 30)),
            ("3gB", Some(3 << 30)),
            ("0G", Some(0)),
            ("17179869183G", Some(17_179_869_183 << 30)),
            ("17179869184G", None),
            ("", None),
            ("512", None),
            ("G", None),
            ("1T", None),
            ("1 M", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_memory_bytes(input), *want, "{input:?}");
        }
    }

    #[test]
    fn cpu_rules() {
        let cases: &[(Value, Result<u32, &str>)] = &[
            (json!(0), Ok(0)),
            (json!(512), Ok(512)),
            (json!(1024), Ok(1024)),
            (json!("100"), Ok(100)),
            (json!("0"), Ok(0)),
            (json!(1025), Err("out_of_range")),
            (json!(-1), Err("out_of_range")),
            (json!("1025"), Err("out_of_range")),
            (json!("99999999999999999999999"), Err("out_of_range")),
            (json!(1.5), Err("not_an_integer")),
            (json!(512.0), Err("not_an_integer")),
            (json!(""), Err("not_an_integer")),
            (json!("-1"), Err("not_an_integer")),
            (json!(" 5"), Err("not_an_integer")),
            (json!("five"), Err("not_an_integer")),
            (json!(null), Err("invalid_type")),
            (json!(true), Err("invalid_type")),
            (json!([1]), Err("invalid_type")),
        ];
        for (value, want) in cases {
            let got = cpu_limit("web", value).map_err(|e| e.rule);
            assert_eq!(got, *want, "{value}");
        }
        let e = cpu_limit("Web", &json!(1)).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("cpu", "invalid_characters"));
        assert_eq!(rule(cpu_limit("", &json!(1))), "empty");
        assert_eq!(cpu_limit("web", &json!(2000)).unwrap_err().field, "cpu");
    }

    #[test]
    fn tag_rules() {
        table(
            "tag key",
            |k| tag(k, "value"),
            &[
                ("env", "ok"),
                ("Environment", "ok"),
                ("", "empty"),
                ("env1", "invalid_characters"),
                ("env_x", "invalid_characters"),
                ("en v", "invalid_characters"),
                ("énv", "invalid_characters"),
                ("a/b", "invalid_characters"),
            ],
        );
        table(
            "tag value",
            |v| tag("env", v),
            &[
                ("prod", "ok"),
                ("Prod_2", "ok"),
                ("_", "ok"),
                ("123", "ok"),
                ("", "empty"),
                ("pro d", "invalid_characters"),
                ("prod-1", "invalid_characters"),
                ("a.b", "invalid_characters"),
                ("prød", "invalid_characters"),
                ("../x", "invalid_characters"),
                ("x\n", "invalid_characters"),
            ],
        );
        assert_eq!(tag("", "x").unwrap_err().field, "tags");
    }

    #[test]
    fn domain_rules() {
        let label63 = long('a', 63);
        let label64 = long('a', 64);
        let d63 = format!("{label63}.com");
        let d64 = format!("{label64}.com");
        // 4 labels of 63 plus 3 dots = 255 characters.
        let d255 = [label63.as_str(); 4].join(".");
        let d256 = format!("a{d255}");
        assert_eq!(d255.len(), 255);
        table(
            "domain",
            domain,
            &[
                ("example.com", "ok"),
                ("www.example.com", "ok"),
                ("my-app.example.co.uk", "ok"),
                ("a1.b2.c3", "ok"),
                ("1a.example.com", "ok"),
                ("localhost", "ok"),
                ("example.com.", "ok"),
                ("EXAMPLE.COM", "ok"),
                (&d63, "ok"),
                (&d255, "ok"),
                ("", "empty"),
                (".", "empty"),
                (&d256, "too_long"),
                ("*.example.com", "wildcard"),
                ("www.*.com", "wildcard"),
                ("*", "wildcard"),
                ("example.com..", "empty_label"),
                (".example.com", "empty_label"),
                ("a..b", "empty_label"),
                ("../x", "empty_label"),
                (&d64, "label_too_long"),
                ("a/b.com", "invalid_characters"),
                ("my_app.com", "invalid_characters"),
                ("exa mple.com", "invalid_characters"),
                (" example.com", "invalid_characters"),
                ("exämple.com", "invalid_characters"),
                ("example.com:80", "invalid_characters"),
                ("-example.com", "leading_dash"),
                ("example-.com", "trailing_dash"),
                ("ex--ample.com", "double_dash"),
                ("xn--bcher-kva.example", "double_dash"),
                ("123.example.com", "numeric_label"),
                ("1.2.3.4", "numeric_label"),
                ("example.123", "numeric_label"),
                ("host1", "single_label_digits"),
                ("10.0.0.1.xip.io", "numeric_label"),
            ],
        );
        assert_eq!(domain("WWW.Example.COM.").as_deref(), Ok("www.example.com"));
        assert_eq!(domain("example.com").as_deref(), Ok("example.com"));
        assert_eq!(domain("*.x.com").unwrap_err().field, "domain");
    }

    #[test]
    fn scale_rules() {
        fn body(v: Value) -> serde_json::Map<String, Value> {
            v.as_object().cloned().unwrap()
        }
        let ok = scale(&body(json!({"web": 3, "worker": "1", "cmd": 0}))).unwrap();
        assert_eq!(
            ok,
            BTreeMap::from([("cmd".into(), 0), ("web".into(), 3), ("worker".into(), 1)])
        );
        assert_eq!(
            scale(&body(json!({"web": 10_000}))).unwrap().get("web"),
            Some(&10_000)
        );

        let cases: &[(Value, &str, &str)] = &[
            (json!({}), "structure", "empty"),
            (json!({"Web": 1}), "structure", "invalid_characters"),
            (json!({"": 1}), "structure", "empty"),
            (json!({"../x": 1}), "structure", "invalid_characters"),
            (json!({"web-": 1}), "structure", "trailing_separator"),
            (json!({"web": -1}), "web", "invalid_format"),
            (json!({"web": 1.5}), "web", "invalid_format"),
            (json!({"web": "-1"}), "web", "invalid_format"),
            (json!({"web": ""}), "web", "invalid_format"),
            (json!({"web": " 1"}), "web", "invalid_format"),
            (json!({"web": "one"}), "web", "invalid_format"),
            (json!({"web": null}), "web", "invalid_format"),
            (json!({"web": true}), "web", "invalid_format"),
            (json!({"web": [1]}), "web", "invalid_format"),
            (json!({"web": 10_001}), "web", "too_large"),
            (json!({"web": "10001"}), "web", "too_large"),
            (
                json!({"web": "99999999999999999999999"}),
                "web",
                "too_large",
            ),
            (json!({"web": 1, "worker": -1}), "worker", "invalid_format"),
        ];
        for (value, field, want) in cases {
            let e = scale(&body(value.clone())).unwrap_err();
            assert_eq!((e.field.as_str(), e.rule), (*field, *want), "{value}");
        }
        let e = scale(&body(json!({"web": "x"}))).unwrap_err();
        assert!(
            e.message.starts_with("Invalid scaling format"),
            "{}",
            e.message
        );
    }

    #[test]
    fn rollback_rules() {
        assert_eq!(rollback_target(1, 1), Ok(1));
        assert_eq!(rollback_target(3, 5), Ok(3));
        assert_eq!(rollback_target(5, 5), Ok(5));
        assert_eq!(rule(rollback_target(0, 5)), "too_small");
        assert_eq!(rule(rollback_target(6, 5)), "not_found");
        assert_eq!(rule(rollback_target(1, 0)), "not_found");
        assert_eq!(rollback_target(0, 1).unwrap_err().field, "version");
    }

    #[test]
    fn key_name_rules() {
        let l128 = long('k', 128);
        let l129 = long('k', 129);
        table(
            "key_name",
            key_name,
            &[
                ("alice@laptop", "ok"),
                ("Alice.Laptop-2_x", "ok"),
                ("clé", "ok"),
                ("..x", "ok"),
                (&l128, "ok"),
                ("", "empty"),
                (&l129, "too_long"),
                ("alice laptop", "whitespace"),
                (" alice", "whitespace"),
                ("alice\n", "whitespace"),
                ("a\u{a0}b", "whitespace"),
                ("a\u{7}b", "invalid_characters"),
                ("a/b", "invalid_characters"),
                ("../x", "invalid_characters"),
                ("/", "invalid_characters"),
                (".", "reserved"),
                ("..", "reserved"),
            ],
        );
        assert_eq!(key_name("").unwrap_err().field, "id");
    }

    /// An OpenSSH-style blob: the length-prefixed algorithm name, then length-prefixed key bytes.
    fn blob(name: &str, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key);
        out
    }

    fn line(algo: &str, blob: &[u8], comment: &str) -> String {
        format!("{algo} {} {comment}", BASE64.encode(blob))
    }

    #[test]
    fn md5_known_vectors() {
        // `printf 'abc' | md5sum`
        assert_eq!(
            md5_fingerprint(b"abc"),
            "90:01:50:98:3c:d2:4f:b0:d6:96:3f:7d:28:e1:7f:72"
        );
        // printf '\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x04\x01\x02\x03\x04' | md5sum
        assert_eq!(
            md5_fingerprint(&blob("ssh-ed25519", &[1, 2, 3, 4])),
            "6a:8a:ea:88:e6:9d:7d:6a:77:f9:94:60:a9:a8:cb:9c"
        );
    }

    #[test]
    fn ssh_public_key_built_blobs() {
        let info = ssh_public_key(&line(
            "ssh-ed25519",
            &blob("ssh-ed25519", &[1, 2, 3, 4]),
            "bob@box",
        ))
        .unwrap();
        assert_eq!(
            info,
            PublicKeyInfo {
                algorithm: "ssh-ed25519".into(),
                fingerprint: "6a:8a:ea:88:e6:9d:7d:6a:77:f9:94:60:a9:a8:cb:9c".into(),
                comment: Some("bob@box".into()),
            }
        );
        // Every supported algorithm works when the blob names it.
        for algo in SSH_KEY_ALGORITHMS {
            let info = ssh_public_key(&line(algo, &blob(algo, &[9; 32]), "")).unwrap();
            assert_eq!(info.algorithm, *algo);
            assert_eq!(info.comment, None);
            assert_eq!(info.fingerprint.len(), 47);
        }
        // Comments may contain spaces; surrounding whitespace is ignored.
        let spaced = format!(
            "  {}  ",
            line("ssh-rsa", &blob("ssh-rsa", b"key"), "my  laptop key")
        );
        let info = ssh_public_key(&spaced).unwrap();
        assert_eq!(info.comment.as_deref(), Some("my  laptop key"));
        // Tabs separate fields as well.
        let tabbed = format!("ssh-rsa\t{}\tme", BASE64.encode(blob("ssh-rsa", b"key")));
        assert_eq!(
            ssh_public_key(&tabbed).unwrap().comment.as_deref(),
            Some("me")
        );
    }

    #[test]
    fn ssh_public_key_real_keys() {
        // Made with `ssh-keygen -t ed25519 -C alice@laptop`; `ssh-keygen -l -E md5` printed the fingerprint.
        let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIId88nn28waknZCdr2qXHaC3ie0A2rMtzq/9sH50s0dd alice@laptop";
        let info = ssh_public_key(ed).unwrap();
        assert_eq!(
            info.fingerprint,
            "c0:f7:5a:76:51:d7:15:1d:bc:81:d6:2a:24:ab:05:45"
        );
        assert_eq!(info.comment.as_deref(), Some("alice@laptop"));
        let ec = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOapb4XNIcaqd8aGPKv5EJ/jC+gWzAtqIQpD8XizmLf6UkTp81J30bPsKqhVOxCkfFCpz3DGMKro7oj1hfeMEnw=\n";
        let info = ssh_public_key(ec).unwrap();
        assert_eq!(info.algorithm, "ecdsa-sha2-nistp256");
        assert_eq!(
            info.fingerprint,
            "9c:a0:f9:68:94:1f:1c:aa:87:8e:d7:27:b6:82:f4:58"
        );
        assert_eq!(info.comment, None);
    }

    #[test]
    fn ssh_public_key_rejections() {
        let good = BASE64.encode(blob("ssh-rsa", b"key"));
        let name_only = {
            let mut b = (7u32).to_be_bytes().to_vec();
            b.extend_from_slice(b"ssh-rsa");
            BASE64.encode(b)
        };
        let truncated = BASE64.encode([0, 0, 0, 50, b's', b's', b'h']);
        let huge_len = BASE64.encode([0xff, 0xff, 0xff, 0xff, b's']);
        let short = BASE64.encode([0, 0]);
        let two_lines = format!("ssh-rsa {good} a\nssh-rsa {good} b");
        let too_long = format!("ssh-rsa {good} {}", long('c', SSH_PUBLIC_KEY_MAX_LEN));
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty"),
            ("   \n".into(), "empty"),
            (too_long, "too_long"),
            (two_lines, "multiple_lines"),
            (good.clone(), "unsupported_algorithm"),
            (format!("ssh-foo {good}"), "unsupported_algorithm"),
            (format!("SSH-RSA {good}"), "unsupported_algorithm"),
            (format!("no-pty ssh-rsa {good}"), "unsupported_algorithm"),
            ("ssh-rsa".into(), "invalid_format"),
            ("ssh-rsa   ".into(), "invalid_format"),
            ("ssh-rsa not*base64".into(), "invalid_base64"),
            (
                format!("ssh-rsa {}", &good[..good.len() - 1]),
                "invalid_base64",
            ),
            (format!("ssh-rsa {short}"), "invalid_blob"),
            (format!("ssh-rsa {truncated}"), "invalid_blob"),
            (format!("ssh-rsa {huge_len}"), "invalid_blob"),
            (format!("ssh-rsa {name_only}"), "invalid_blob"),
            (format!("ssh-ed25519 {good}"), "algorithm_mismatch"),
            (
                format!("ssh-rsa {good} bad\u{1b}comment"),
                "invalid_characters",
            ),
        ];
        for (input, want) in &cases {
            assert_eq!(rule(ssh_public_key(input)), *want, "{input:?}");
        }
        assert_eq!(ssh_public_key("").unwrap_err().field, "public");
    }

    #[test]
    fn certificate_common_name_rules() {
        table(
            "common_name",
            certificate_common_name,
            &[
                ("example.com", "ok"),
                ("WWW.Example.com", "ok"),
                ("", "empty"),
                ("*.example.com", "wildcard"),
                ("foo*.example.com", "wildcard"),
                ("exa mple.com", "invalid_characters"),
                ("../x", "empty_label"),
                ("a/b.com", "invalid_characters"),
                ("-a.com", "leading_dash"),
                ("1.2.3.4", "numeric_label"),
            ],
        );
        let e = certificate_common_name("bad_name.com").unwrap_err();
        assert_eq!(e.field, "common_name");
    }

    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBgTCCASegAwIBAgIUGREK78NPPyaTNjq/FEUlcpoKzzIwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLZXhhbXBsZS5jb20wHhcNMjYxMTI2MjIxNjU5WhcNMzYxMTIz
MjIxNjU5WjAWMRQwEgYDVQQDDAtleGFtcGxlLmNvbTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABLS/uVWNHhn2KljNH/BujS1+JezzxQ/3E+9GQSR1o3J91K3voOwF
v2FfTpIv2VMV+DN0PaU8tGYqK93N/eOEiwijUzBRMB0GA1UdDgQWBBRNJk8BBfR9
W7tngCKUIGE6yj1eOzAfBgNVHSMEGDAWgBRNJk8BBfR9W7tngCKUIGE6yj1eOzAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIASpMYJLphPG48yLszYu
39JPCFJ75mkUncFOfju0KW9DAiEAjKN5R9zGJ/vbF4OzAVHVoTdIHwjkftbOyAx+
ssvnNWo=
-----END CERTIFICATE-----
";

    // A throwaway test key, made for these tests only.
    const EC_KEY: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIIylVIo/ByhJiRwMZM9KekaXsgNwGTOwUVDAku+FRH3boAoGCCqGSM49
AwEHoUQDQgAEtL+5VY0eGfYqWM0f8G6NLX4l7PPFD/cT70ZBJHWjcn3Ure+g7AW/
YV9Oki/ZUxX4M3Q9pTy0Zior3c3944SLCA==
-----END EC PRIVATE KEY-----
";

    const PKCS8_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjKVUij8HKEmJHAxk
z0p6RpeyA3AZM7BRUMCS74VEfduhRANCAAS0v7lVjR4Z9ipYzR/wbo0tfiXs88UP
9xPvRkEkdaNyfdSt76DsBb9hX06SL9lTFfgzdD2lPLRmKivdzf3jhIsI
-----END PRIVATE KEY-----
";

    #[test]
    fn pem_certificate_blocks() {
        let chain = format!("{CERT}{CERT}");
        let crlf = CERT.replace('\n', "\r\n");
        let with_text = format!("Subject: example.com\n{CERT}trailing text\n");
        let bad_body = CERT.replace("ssvnNWo=", "ss*nNWo=");
        let second_bad = format!("{CERT}{bad_body}");
        let unterminated = CERT.replace("-----END CERTIFICATE-----", "");
        let cases: Vec<(String, &str)> = vec![
            (CERT.into(), "ok"),
            (chain, "ok"),
            (crlf, "ok"),
            (with_text, "ok"),
            (String::new(), "empty"),
            ("  \n".into(), "empty"),
            ("not a certificate".into(), "missing_pem_block"),
            (EC_KEY.into(), "missing_pem_block"),
            (
                CERT.replace("CERTIFICATE", "TRUSTED CERTIFICATE"),
                "missing_pem_block",
            ),
            (unterminated, "unterminated_pem_block"),
            (
                "-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----".into(),
                "empty_pem_block",
            ),
            (bad_body, "invalid_base64"),
            (second_bad, "invalid_base64"),
        ];
        for (input, want) in &cases {
            assert_eq!(
                rule(pem_block_present(input, "CERTIFICATE", "certificate")),
                *want,
                "{input:?}"
            );
        }
        assert_eq!(
            pem_block_present("", "CERTIFICATE", "certificate")
                .unwrap_err()
                .field,
            "certificate"
        );
    }

    #[test]
    fn pem_private_key_rules() {
        let rsa_label = EC_KEY.replace("EC PRIVATE KEY", "RSA PRIVATE KEY");
        let encrypted_pkcs8 = PKCS8_KEY.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY");
        let legacy_encrypted = EC_KEY.replace(
            "-----\nMHc",
            "-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nMHc",
        );
        let two = format!("{EC_KEY}{PKCS8_KEY}");
        let key_and_cert = format!("{EC_KEY}{CERT}");
        let cases: Vec<(String, &str)> = vec![
            (EC_KEY.into(), "ok"),
            (PKCS8_KEY.into(), "ok"),
            (rsa_label, "ok"),
            (key_and_cert, "ok"),
            (String::new(), "empty"),
            (CERT.into(), "missing_pem_block"),
            (
                EC_KEY.replace("EC PRIVATE", "DSA PRIVATE"),
                "missing_pem_block",
            ),
            (encrypted_pkcs8, "encrypted_key"),
            (legacy_encrypted, "encrypted_key"),
            (two, "multiple_pem_blocks"),
            (EC_KEY.replace("SLCA==", "SL@A=="), "invalid_base64"),
            (
                EC_KEY.replace("-----END EC PRIVATE KEY-----", ""),
                "unterminated_pem_block",
            ),
        ];
        for (input, want) in &cases {
            assert_eq!(rule(pem_private_key(input)), *want, "{input:?}");
        }
        assert_eq!(pem_private_key(CERT).unwrap_err().field, "key");
    }

    #[test]
    fn errors_have_messages() {
        // Every error carries a sentence; spot-check a few across the module.
        let errors = [
            app_id("", &[]).unwrap_err(),
            config_value("PORT", &json!("0")).unwrap_err(),
            domain("*.x.com").unwrap_err(),
            ssh_public_key("ssh-rsa").unwrap_err(),
            scale(&serde_json::Map::new()).unwrap_err(),
        ];
        for e in errors {
            assert!(!e.message.is_empty(), "{e:?}");
            assert!(e.message.ends_with('.'), "{e:?}");
        }
    }
}
