//! What every request handler can reach: the resolved configuration, the local store, and the
//! replication backend (local-only, or the gateway in front of an upstream).

use crate::config::Config;
use crate::replication::Replication;
use crate::store::Store;

pub struct Context {
    pub config: Config,
    pub store: Store,
    pub replication: Replication,
}
