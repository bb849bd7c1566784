// The embedded SQLite backend (sqlite:///path.db, sqlite://relative.db, sqlite://:memory:): one
// machine, one owner (an flock on PATH-lock), synchronous=FULL.
#pragma once

#include "controller/store.h"

namespace nasforge {

// `path` is the URL without "sqlite://".
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(absl::string_view path,
                                                       const StoreOptions& options);

}  // namespace nasforge
