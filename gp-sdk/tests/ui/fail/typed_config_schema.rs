// The configuration `#[on_load]` takes carries its schema: a type without `ConfigSchema` is
// refused at its name, saying what to derive; and a rename rule serde refuses is serde's one
// error, not a second from the derive that reads the same attribute.
mod without {
    #[gp_sdk::plugin]
    mod api {
        #[derive(serde::Deserialize)]
        pub struct Config {
            pub greeting: String,
        }

        #[on_load]
        fn open(config: Config) -> String {
            config.greeting
        }

        #[label]
        fn greet(greeting: &String) -> String {
            greeting.clone()
        }
    }
}

#[derive(serde::Deserialize, gp_sdk::schema::ConfigSchema)]
#[serde(rename_all = "Title Case")]
pub struct Renamed {
    pub greeting: String,
}

fn main() {}
