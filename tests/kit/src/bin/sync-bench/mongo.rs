//! MongoDB as the variants reach it: a client whose command events count
//! each command by name, the time the driver waited for each kind, and the
//! bytes of the replies. The product's child process counts its own the same
//! way and sends the tally back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;

/// The tally a client's command events add to.
#[derive(Default)]
pub struct MongoCounts(Mutex<MongoTally>);

/// What the commands since the last [`MongoCounts::take_all`] came to.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct MongoTally {
    /// Commands sent, by name.
    pub commands: BTreeMap<String, u64>,
    /// Time the driver waited for each kind of command.
    pub wait_ms: BTreeMap<String, f64>,
    /// Bytes of the replies.
    pub reply_bytes: u64,
}

impl MongoCounts {
    /// The tally so far, which starts again from nothing.
    pub fn take_all(&self) -> MongoTally {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A client of `uri` that tallies every command into `counts`.
pub async fn client(uri: &str, counts: Arc<MongoCounts>) -> mongodb::Client {
    let mut options = mongodb::options::ClientOptions::parse(uri)
        .await
        .unwrap_or_else(|e| panic!("MONGODB_URI: {e}"));
    options.command_event_handler = Some(EventHandler::callback(move |ev: CommandEvent| {
        let mut tally = counts.0.lock().unwrap_or_else(|e| e.into_inner());
        match ev {
            CommandEvent::Started(s) => *tally.commands.entry(s.command_name).or_default() += 1,
            CommandEvent::Succeeded(s) => {
                *tally.wait_ms.entry(s.command_name).or_default() +=
                    s.duration.as_secs_f64() * 1000.0;
                tally.reply_bytes += mongodb::bson::to_vec(&s.reply).map_or(0, |b| b.len() as u64);
            }
            _ => {}
        }
    }));
    mongodb::Client::with_options(options).unwrap_or_else(|e| panic!("mongo client: {e}"))
}
