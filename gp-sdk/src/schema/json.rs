//! A [`Schema`] as JSON text, written by `const fn`s: the generated code sizes and fills the
//! static that holds the plugin's details section with them, at compile time.
//!
//! One writer does both: with an empty buffer it only counts ([`details_len`]), with a buffer
//! of that length it fills it ([`details_json`]), so the two cannot disagree.

use super::{Object, Schema};

/// The length of `prefix`, the JSON of `schema` (`null` for none), then `suffix`.
pub const fn details_len(prefix: &str, schema: Option<&Schema>, suffix: &str) -> usize {
    let mut writer = Writer {
        buf: &mut [],
        pos: 0,
    };
    writer.document(prefix, schema, suffix);
    writer.pos
}

/// `prefix`, the JSON of `schema` (`null` for none), then `suffix`, in `N` bytes: `N` is
/// [`details_len`] of the same (a compile error otherwise, when the generated static is
/// evaluated).
pub const fn details_json<const N: usize>(
    prefix: &str,
    schema: Option<&Schema>,
    suffix: &str,
) -> [u8; N] {
    let mut buf = [0u8; N];
    let mut writer = Writer {
        buf: &mut buf,
        pos: 0,
    };
    writer.document(prefix, schema, suffix);
    assert!(writer.pos == N, "details_json: N is not details_len");
    buf
}

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    const fn document(&mut self, prefix: &str, schema: Option<&Schema>, suffix: &str) {
        self.raw(prefix);
        match schema {
            Some(schema) => self.schema(schema, ""),
            None => self.raw("null"),
        }
        self.raw(suffix);
    }

    const fn byte(&mut self, byte: u8) {
        if self.pos < self.buf.len() {
            self.buf[self.pos] = byte;
        }
        self.pos += 1;
    }

    const fn raw(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            self.byte(bytes[i]);
            i += 1;
        }
    }

    /// `text` as a JSON string.
    const fn string(&mut self, text: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.byte(b'"');
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => self.raw("\\\""),
                b'\\' => self.raw("\\\\"),
                b'\n' => self.raw("\\n"),
                b'\r' => self.raw("\\r"),
                b'\t' => self.raw("\\t"),
                control @ 0..=0x1f => {
                    self.raw("\\u00");
                    self.byte(HEX[(control >> 4) as usize]);
                    self.byte(HEX[(control & 0xf) as usize]);
                }
                byte => self.byte(byte),
            }
            i += 1;
        }
        self.byte(b'"');
    }

    const fn integer(&mut self, value: i128) {
        if value < 0 {
            self.byte(b'-');
        }
        let mut magnitude = value.unsigned_abs();
        let mut digits = [0u8; 40];
        let mut count = 0;
        loop {
            digits[count] = b'0' + (magnitude % 10) as u8;
            count += 1;
            magnitude /= 10;
            if magnitude == 0 {
                break;
            }
        }
        while count > 0 {
            count -= 1;
            self.byte(digits[count]);
        }
    }

    /// `"key":` then the string `value`.
    const fn member(&mut self, key: &str, value: &str) {
        self.string(key);
        self.byte(b':');
        self.string(value);
    }

    /// `schema` as a JSON object, with `description` (a property's doc comment) if not empty.
    const fn schema(&mut self, schema: &Schema, description: &str) {
        self.byte(b'{');
        let described = !description.is_empty();
        if described {
            self.member("description", description);
        }
        self.members(schema, described);
        self.byte(b'}');
    }

    /// The members of `schema`'s object, after a first member if `after` (then each starts
    /// with a comma).
    const fn members(&mut self, schema: &Schema, after: bool) {
        match *schema {
            Schema::Any(what) => {
                if !after {
                    self.member("description", what);
                }
            }
            Schema::Null => self.typed("null", after),
            Schema::Bool => self.typed("boolean", after),
            Schema::Number => self.typed("number", after),
            Schema::String => self.typed("string", after),
            Schema::Integer { minimum, maximum } => {
                self.typed("integer", after);
                self.raw(",\"minimum\":");
                self.integer(minimum);
                self.raw(",\"maximum\":");
                self.integer(maximum);
            }
            Schema::Nullable(inner) => {
                self.comma(after);
                self.raw("\"anyOf\":[");
                self.schema(inner, "");
                self.raw(",{\"type\":\"null\"}]");
            }
            Schema::Array(items) => {
                self.typed("array", after);
                self.raw(",\"items\":");
                self.schema(items, "");
            }
            Schema::Map(values) => {
                self.typed("object", after);
                self.raw(",\"additionalProperties\":");
                self.schema(values, "");
            }
            Schema::OneOf(names) => {
                self.typed("string", after);
                self.raw(",\"enum\":[");
                let mut i = 0;
                while i < names.len() {
                    if i > 0 {
                        self.byte(b',');
                    }
                    self.string(names[i]);
                    i += 1;
                }
                self.byte(b']');
            }
            Schema::Object(object) => self.object(object, after),
        }
    }

    const fn comma(&mut self, after: bool) {
        if after {
            self.byte(b',');
        }
    }

    const fn typed(&mut self, name: &str, after: bool) {
        self.comma(after);
        self.member("type", name);
    }

    const fn object(&mut self, object: &Object, after: bool) {
        self.comma(after);
        self.member("title", object.name);
        if !after && !object.description.is_empty() {
            self.byte(b',');
            self.member("description", object.description);
        }
        self.raw(",\"type\":\"object\",\"properties\":{");
        let properties = object.properties;
        let mut i = 0;
        while i < properties.len() {
            if i > 0 {
                self.byte(b',');
            }
            self.string(properties[i].name);
            self.byte(b':');
            self.schema(properties[i].schema, properties[i].description);
            i += 1;
        }
        self.byte(b'}');
        let mut required = 0;
        i = 0;
        while i < properties.len() {
            if properties[i].required {
                self.raw(if required == 0 {
                    ",\"required\":["
                } else {
                    ","
                });
                self.string(properties[i].name);
                required += 1;
            }
            i += 1;
        }
        if required > 0 {
            self.byte(b']');
        }
        if object.closed {
            self.raw(",\"additionalProperties\":false");
        }
    }
}
