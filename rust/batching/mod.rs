//! Dynamic batching: the queue, the batch-forming policy, and their Python face.

pub mod policy;
pub mod py;
pub mod queue;
