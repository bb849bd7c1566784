// The built-in store backends (one line each) and OpenStore's dispatch by URL scheme.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controller/store.h"
#ifdef NASFORGE_WITH_POSTGRES
#include "controller/store_postgres.h"
#endif
#include "controller/store_sqlite.h"

namespace nasforge {
namespace {

void Builtins(StoreBackendRegistry& r) {
  auto add = [&](StoreBackend b) { r.AddBuiltin(std::move(b)); };
  add({"sqlite", "sqlite:///path.db: embedded, one machine",
       [](absl::string_view url, const StoreOptions& o) {
         return OpenSqliteStore(url.substr(url.find("://") + 3), o);
       }});
#ifdef NASFORGE_WITH_POSTGRES
  add({"postgresql", "postgresql://user@host:port/db: the service's store", OpenPostgresStore});
  add({"postgres", "postgres://...: as postgresql://", OpenPostgresStore});
#endif
}

}  // namespace

StoreBackendRegistry& StoreBackends() {
  return GlobalRegistry<StoreBackend>("store backend", Builtins);
}

absl::StatusOr<std::unique_ptr<Store>> OpenStore(absl::string_view url,
                                                 const StoreOptions& options) {
  const size_t sep = url.find("://");
  const StoreBackend* b =
      sep == absl::string_view::npos ? nullptr : StoreBackends().Find(url.substr(0, sep));
  if (b == nullptr) {
    // Only the scheme is echoed: the rest of a URL may hold a password.
    absl::string_view shown = sep == absl::string_view::npos ? url : url.substr(0, sep);
    return absl::InvalidArgumentError(
        absl::StrCat("store: '", shown, "' is not a URL of a known backend (",
                     absl::StrJoin(StoreBackends().Names(), ", "),
                     "): sqlite:///path.db or postgresql://user@host:port/db"));
  }
  return b->open(url, options);
}

}  // namespace nasforge
