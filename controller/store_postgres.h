// The PostgreSQL backend (any libpq URI: postgresql://user@host:port/db?...): the service's
// store; one owner by a session advisory lock, hot standby (StoreOptions::standby).
#pragma once

#include "controller/store.h"

namespace nasforge {

absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(absl::string_view url,
                                                         const StoreOptions& options);

}  // namespace nasforge
