//! Random `adjective-noun` app names, as Deis gave apps created without an id.

use rand::seq::IndexedRandom;

const ADJECTIVES: &[&str] = &[
    "ablest", "absurd", "actual", "allied", "artful", "atomic", "august", "bamboo", "benign",
    "blonde", "blurry", "bolder", "breezy", "bubbly", "candid", "casual", "cheery", "classy",
    "clever", "convex", "cubist", "dainty", "dapper", "decent", "deluxe", "docile", "dogged",
    "dreamy", "earthy", "easier", "echoed", "edible", "elfish", "excess", "exotic", "expert",
    "fabled", "famous", "feline", "finest", "flaxen", "folksy", "frozen", "gaslit", "gentle",
    "gifted", "ginger", "global", "golden", "grassy", "hearty", "hidden", "hipper", "honest",
    "humble", "hungry", "hushed", "iambic", "iconic", "indoor", "inward", "ironic", "island",
    "italic", "jagged", "jangly", "jaunty", "jiggly", "jovial", "joyful", "junior", "kabuki",
    "karmic", "lavish", "lawful", "leafy", "lively", "lovely", "lucent", "lunar", "magnum",
    "marble", "mellow", "modern", "mystic", "nimble", "noble", "oblong", "orange", "placid",
    "plucky", "polite", "quaint", "quirky", "rising", "rustic", "serene", "silver", "sturdy",
    "tender", "tranquil", "upbeat", "velvet", "vivid", "wooden", "zesty",
];

const NOUNS: &[&str] = &[
    "ampersand",
    "anchovy",
    "antelope",
    "artist",
    "asteroid",
    "backpack",
    "badger",
    "balloon",
    "banjo",
    "barnacle",
    "beacon",
    "bicycle",
    "biscuit",
    "blossom",
    "bobcat",
    "bonsai",
    "boulder",
    "buffalo",
    "cactus",
    "caravan",
    "castle",
    "cathedral",
    "cheetah",
    "chipmunk",
    "cobbler",
    "comet",
    "compass",
    "cookie",
    "cricket",
    "crystal",
    "dingo",
    "dolphin",
    "dragonfly",
    "drumkit",
    "eclipse",
    "elephant",
    "falcon",
    "fiddle",
    "firefly",
    "flamingo",
    "fountain",
    "gazelle",
    "geyser",
    "giraffe",
    "glacier",
    "gondola",
    "harbor",
    "hedgehog",
    "heron",
    "horizon",
    "iceberg",
    "igloo",
    "jackal",
    "jaguar",
    "jellyfish",
    "kayak",
    "kettle",
    "koala",
    "lagoon",
    "lantern",
    "lemur",
    "lighthouse",
    "llama",
    "magnolia",
    "mandolin",
    "meadow",
    "meteor",
    "monsoon",
    "narwhal",
    "nebula",
    "oasis",
    "octopus",
    "origami",
    "otter",
    "paddock",
    "pagoda",
    "panda",
    "pelican",
    "penguin",
    "pinecone",
    "quasar",
    "raccoon",
    "rainbow",
    "reindeer",
    "saffron",
    "satchel",
    "sequoia",
    "snowflake",
    "sparrow",
    "squirrel",
    "tambourine",
    "teacup",
    "toucan",
    "trumpet",
    "tugboat",
    "umbrella",
    "volcano",
    "walrus",
    "waterfall",
    "wombat",
    "yodeler",
    "zeppelin",
];

/// A random `adjective-noun` name, e.g. `dapper-walrus`: always a valid app id.
pub fn random_app_name() -> String {
    let mut rng = rand::rng();
    let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("nimble");
    let noun = NOUNS.choose(&mut rng).copied().unwrap_or("otter");
    format!("{adjective}-{noun}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use deis_core::validation;

    #[test]
    fn every_word_makes_a_valid_app_id() {
        for adjective in ADJECTIVES {
            for noun in NOUNS {
                let name = format!("{adjective}-{noun}");
                assert!(validation::app_id(&name, &[]).is_ok(), "{name}");
            }
        }
        let name = random_app_name();
        assert!(name.contains('-'));
    }
}
