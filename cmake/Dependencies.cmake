# All dependencies come from Debian 12 packages (deploy/install-deps.sh).
# Protobuf has no CMake config on Debian 12: module mode, and before Torch's.
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)
# prometheus-cpp 1.0 fails when a version is requested.
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(yaml-cpp CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
if(NOT NASFORGE_WORKER_ONLY)
  find_package(CLI11 CONFIG REQUIRED)
endif()
if(NOT NASFORGE_WORKER_ONLY)
  find_package(SQLite3 REQUIRED)
endif()
find_package(ZLIB REQUIRED)
find_package(Boost REQUIRED)
find_package(PkgConfig REQUIRED)
# libpqxx 6.4 ships no CMake config.
if(NASFORGE_WITH_POSTGRES)
  pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx)
endif()
if(NASFORGE_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
endif()
if(NASFORGE_WITH_TORCH)
  find_package(Torch REQUIRED)
endif()
get_target_property(GRPC_CPP_PLUGIN gRPC::grpc_cpp_plugin LOCATION)
# libcsv (libcsv-dev) ships neither pkg-config nor CMake files.
find_path(CSV_INCLUDE_DIR csv.h REQUIRED)
find_library(CSV_LIBRARY csv REQUIRED)
add_library(csv::csv UNKNOWN IMPORTED)
set_target_properties(csv::csv PROPERTIES IMPORTED_LOCATION ${CSV_LIBRARY}
                      INTERFACE_INCLUDE_DIRECTORIES ${CSV_INCLUDE_DIR})

find_package(Eigen3 3.3 REQUIRED NO_MODULE)
