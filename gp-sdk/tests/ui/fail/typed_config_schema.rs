// A configuration whose type has no `ConfigSchema` still builds (the library then carries no
// schema); one that derives it needs it of every field's type, refused at the field's type
// saying what to derive. A rename rule serde refuses is serde's one error, not a second from
// the derive that reads the same attribute.
#[derive(serde::Deserialize)]
pub struct Endpoint {
    pub url: String,
}

#[derive(serde::Deserialize, gp_sdk::schema::ConfigSchema)]
pub struct Config {
    pub endpoint: Endpoint,
}

#[derive(serde::Deserialize, gp_sdk::schema::ConfigSchema)]
#[serde(rename_all = "Title Case")]
pub struct Renamed {
    pub greeting: String,
}

fn main() {}
