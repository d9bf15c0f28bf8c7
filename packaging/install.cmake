# What `cmake --install` puts where (GNUInstallDirs), and the Debian package
# CPack makes of it (scripts/build-deb.sh). Included from the top-level
# CMakeLists.txt after the targets.

# kmq-job(5): the prose of packaging/kmq-job.5.in around the key table, which
# is generated from `kmq help keys` so that it lists exactly the keys of the
# program it ships with.
set(KMQ_JOB_MAN ${PROJECT_BINARY_DIR}/man/kmq-job.5)
add_custom_command(
  OUTPUT ${KMQ_JOB_MAN}
  COMMAND sh ${PROJECT_SOURCE_DIR}/packaging/make-job-man.sh $<TARGET_FILE:kmq_cli>
          ${PROJECT_SOURCE_DIR}/packaging/kmq-job.5.in ${KMQ_JOB_MAN} ${PROJECT_VERSION}
          ${CMAKE_INSTALL_FULL_DOCDIR}
  DEPENDS kmq_cli ${PROJECT_SOURCE_DIR}/packaging/make-job-man.sh
          ${PROJECT_SOURCE_DIR}/packaging/kmq-job.5.in
  COMMENT "Generating kmq-job(5) from kmq help keys" VERBATIM)
configure_file(packaging/kmq.1.in ${PROJECT_BINARY_DIR}/man/kmq.1 @ONLY)
# Installed gzip -9n'd, as Debian's policy wants man pages (man reads both).
set(KMQ_MAN_GZ)
foreach(page kmq.1 kmq-job.5)
  add_custom_command(
    OUTPUT ${PROJECT_BINARY_DIR}/man/${page}.gz
    COMMAND sh -c "gzip -9nc \"$0\" > \"$1\"" ${PROJECT_BINARY_DIR}/man/${page}
            ${PROJECT_BINARY_DIR}/man/${page}.gz
    DEPENDS ${PROJECT_BINARY_DIR}/man/${page} VERBATIM)
  list(APPEND KMQ_MAN_GZ ${PROJECT_BINARY_DIR}/man/${page}.gz)
endforeach()
add_custom_target(kmq_man ALL DEPENDS ${KMQ_JOB_MAN} ${KMQ_MAN_GZ})

# pkg-config: the shared library only (the API needs no other -l).
file(RELATIVE_PATH KMQ_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(packaging/kmq.pc.in ${PROJECT_BINARY_DIR}/kmq.pc @ONLY)

install(TARGETS kmq_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS kmq_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES include/kmq/kmq.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kmq)
install(FILES ${PROJECT_BINARY_DIR}/kmq.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(FILES ${PROJECT_BINARY_DIR}/man/kmq.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_BINARY_DIR}/man/kmq-job.5.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES packaging/kmq.bash-completion DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME kmq)
install(FILES configs/demo.ini configs/elbow.ini configs/overnight.ini
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Debian package: kmq_VERSION_amd64.deb; Depends from dpkg-shlibdeps over the
# binary and the library (libvips42, libpng16-16, libjansson4, libgomp1, ...).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME kmq)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "kmq maintainers <kmq@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "kmq runs exact k-means colour quantization over whole folders of images:\nindexed PNGs, label maps, summaries and an HTML report, resumable and\ndeterministic at any thread count. Ships libkmq, its C API and pkg-config file.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION graphics)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "man-db, bash-completion, python3-numpy")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
include(CPack)
