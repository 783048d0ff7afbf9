//! The domain model (ARCHITECTURE.md §2): what the store keeps and the use cases pass around,
//! by aggregate.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

mod admin;
mod apps;
mod instances;
mod invitations;
mod users;

pub use admin::*;
pub use apps::*;
pub use instances::*;
pub use invitations::*;
pub use users::*;
