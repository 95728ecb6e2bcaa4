//! What the layers below the commands need of a command's context: the MINIK_HOME layout and
//! the reporter (the commands' `Context` also holds the global flags, which stay up there).

use crate::state::Home;
use crate::ui::Reporter;

/// Paths and progress output, borrowed from the running command.
#[derive(Clone, Copy)]
pub struct Session<'a> {
    pub home: &'a Home,
    pub reporter: &'a Reporter,
}
