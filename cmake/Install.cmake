# `cmake --install` in FHS places (prefix /usr for packages, /usr/local by default), in four
# components that CPack turns into Debian packages with their dependencies found by
# dpkg-shlibdeps:
#   controller  nasforge-controller, its systemd unit, the Grafana dashboards and Prometheus rules
#   worker      nasforge-worker and its systemd template unit
#   cli         nasforge, the example job specs and search spaces, bash completion
#   python      the Python client and worker SDK (python3-nasforge, architecture all)
#   cpack -G DEB   (in the build directory) writes the .deb files.
include(GNUInstallDirs)
set(NASFORGE_SHARE ${CMAKE_INSTALL_DATADIR}/nasforge)

# The systemd units name the binaries where this install puts them: written at install time, when
# the prefix is known (cpack installs to /usr whatever the build's prefix).
function(nasforge_install_unit unit component)
  install(CODE "
    file(READ \"${PROJECT_SOURCE_DIR}/deploy/systemd/${unit}\" text)
    string(REPLACE \"/usr/local/bin\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\" text \"\${text}\")
    file(WRITE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/${unit}\" \"\${text}\")
    message(STATUS \"Installing: \$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/${unit}\")
  " COMPONENT ${component})
endfunction()

if(TARGET nasforge-controller)
  install(TARGETS nasforge-controller RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
          COMPONENT controller)
  nasforge_install_unit(nasforge-controller.service controller)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/dashboards/ DESTINATION ${NASFORGE_SHARE}/dashboards
          COMPONENT controller PATTERN "*.py" EXCLUDE)
endif()
if(TARGET nasforge-worker)
  install(TARGETS nasforge-worker RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT worker)
  nasforge_install_unit(nasforge-worker@.service worker)
endif()
if(TARGET nasforge)
  install(TARGETS nasforge RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/search_spaces/ DESTINATION ${NASFORGE_SHARE}/search_spaces
          COMPONENT cli)
  # The completion script, from the built CLI itself (it describes its own flags).
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/completion/nasforge
                     COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/completion
                     COMMAND nasforge completion bash > ${CMAKE_BINARY_DIR}/completion/nasforge
                     DEPENDS nasforge COMMENT "bash completion of nasforge")
  add_custom_target(nasforge_completion ALL DEPENDS ${CMAKE_BINARY_DIR}/completion/nasforge)
  install(FILES ${CMAKE_BINARY_DIR}/completion/nasforge
          DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT cli)
endif()
if(TARGET nasforge_python)
  install(DIRECTORY ${CMAKE_BINARY_DIR}/python/nasforge DESTINATION lib/python3/dist-packages
          COMPONENT python PATTERN "__pycache__" EXCLUDE)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/clients/python/examples/
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/python3-nasforge/examples COMPONENT python)
endif()
foreach(component controller worker cli)
  install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/nasforge-${component}
          COMPONENT ${component})
endforeach()

set(CPACK_PACKAGE_NAME nasforge)
set(CPACK_PACKAGE_VENDOR "nasforge")
set(CPACK_PACKAGE_CONTACT "nasforge maintainers <nasforge@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "distributed neural-architecture search and efficiency benchmarking")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL controller worker cli python)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)  # xz of the stripped binaries costs minutes on 2 cores
set(CPACK_DEBIAN_CONTROLLER_PACKAGE_NAME nasforge-controller)
set(CPACK_DEBIAN_CONTROLLER_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/deploy/debian/postinst)
set(CPACK_DEBIAN_CONTROLLER_PACKAGE_RECOMMENDS "nasforge-cli, prometheus")
set(CPACK_DEBIAN_WORKER_PACKAGE_NAME nasforge-worker)
set(CPACK_DEBIAN_WORKER_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/deploy/debian/postinst)
set(CPACK_DEBIAN_WORKER_PACKAGE_RECOMMENDS "dataset-fashion-mnist")
set(CPACK_DEBIAN_CLI_PACKAGE_NAME nasforge-cli)
set(CPACK_DEBIAN_PYTHON_PACKAGE_NAME python3-nasforge)
set(CPACK_DEBIAN_PYTHON_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_PYTHON_PACKAGE_SHLIBDEPS OFF)
set(CPACK_DEBIAN_PYTHON_PACKAGE_DEPENDS "python3, python3-grpcio, python3-protobuf")
set(CPACK_DEBIAN_PYTHON_PACKAGE_RECOMMENDS "python3-pandas, python3-torch")
set(CPACK_COMPONENT_CONTROLLER_DESCRIPTION "nasforge controller: jobs, leases, the Pareto store (SQLite or PostgreSQL)")
set(CPACK_COMPONENT_WORKER_DESCRIPTION "nasforge worker: trains candidates with LibTorch, measures latency")
set(CPACK_COMPONENT_CLI_DESCRIPTION "nasforge command line: submit, watch, query, export")
set(CPACK_COMPONENT_PYTHON_DESCRIPTION "nasforge Python client and worker SDK")
include(CPack)
