# install() rules (GNUInstallDirs): svmkit in bin/, its helper programs in
# libexec/svmkit/ (SVMKIT_HELPER_INSTALL_DIR, where an installed svmkit looks:
# platform/helper_program.cpp), the docs in share/doc/svmkit/, the man pages
# in share/man/man1/ and the bash completion in
# share/bash-completion/completions/ (both written by svmkit-doc, wrapper/).
#
#   cmake --install BUILD [--prefix DIR]      or     DESTDIR=ROOT cmake --install BUILD

# First, a clear message when the destination cannot be written (a read-only
# file system, or no permission), before anything is copied: the nearest
# existing directory of the prefix must take a new file.
install(CODE [[
  set(svmkit_dest "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")
  set(svmkit_dir "${svmkit_dest}")
  while(NOT IS_DIRECTORY "${svmkit_dir}")
    get_filename_component(svmkit_dir "${svmkit_dir}" DIRECTORY)
  endwhile()
  set(svmkit_probe "${svmkit_dir}/.svmkit-install-probe")
  execute_process(COMMAND "${CMAKE_COMMAND}" -E touch "${svmkit_probe}"
                  RESULT_VARIABLE svmkit_rc OUTPUT_QUIET ERROR_VARIABLE svmkit_err)
  if(NOT svmkit_rc EQUAL 0)
    message(FATAL_ERROR "svmkit: cannot install into ${svmkit_dest}: ${svmkit_dir} is not "
            "writable (a read-only file system or no permission). Install elsewhere with "
            "`cmake --install BUILD --prefix DIR` (or DESTDIR=DIR), or as a user who may "
            "write there.")
  endif()
  file(REMOVE "${svmkit_probe}")
]])

install(TARGETS svmkit RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS svmkit-hypervisor svmkit-vcpu svmkit-vhost-blk RUNTIME DESTINATION ${SVMKIT_HELPER_INSTALL_DIR})
# Guest programs for the simulated machine (not host executables): the boot
# loader `svmkit boot --disk/--kexec` runs, and the sample guest kernel users
# build a first image from.
install(FILES ${PROJECT_BINARY_DIR}/wrapper/svmkit-boot-loader.elf ${SVMKIT_SAMPLE_KERNEL_ELF}
        DESTINATION ${SVMKIT_HELPER_INSTALL_DIR})
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}
        FILES_MATCHING PATTERN "*.md")
install(DIRECTORY ${SVMKIT_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
        FILES_MATCHING PATTERN "*.1")
install(FILES ${SVMKIT_COMPLETION} DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
