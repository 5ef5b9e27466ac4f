//! Arrow IPC tensor messages, byte-identical with Arrow C++.
