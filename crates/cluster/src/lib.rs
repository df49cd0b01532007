//! bf on Apache DataFusion Ballista (issue 15). Empty until it lands. Its
//! sessions start from `bf_lake::Lake::session`'s function set
//! (`bf_indicators::register` / `window_functions`), the one place that lists
//! every bf function, so the client, the scheduler and each executor know the
//! same ones; files executors write are committed through the lake.
