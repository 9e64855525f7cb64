//! The store contract, run against the domain's in-memory adapter, so embedders and the
//! domain's own tests see the same behaviour as SQLite and PostgreSQL.

mod contract;

use june_domain::memory::InMemoryStore;
use june_store::Stores;

struct Db {
    stores: Stores,
}

impl Db {
    async fn cleanup(self) {}
}

async fn fresh() -> Db {
    Db {
        stores: Stores::of(InMemoryStore::default()),
    }
}

store_contract!(fresh);
