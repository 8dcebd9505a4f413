# SVMKIT_VERSION_FULL: the project version, with `git describe` appended when
# the source is a git work tree (a source tarball or a Debian package build
# shows the plain version). Re-read when HEAD moves.
option(SVMKIT_VERSION_FROM_GIT "Append `git describe` to the version in a git work tree" ON)
set(SVMKIT_VERSION_FULL ${PROJECT_VERSION})
if(SVMKIT_VERSION_FROM_GIT AND EXISTS ${PROJECT_SOURCE_DIR}/.git)
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(COMMAND ${GIT_EXECUTABLE} describe --always --tags
                    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE describe
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
    if(rc EQUAL 0 AND describe)
      set(SVMKIT_VERSION_FULL "${PROJECT_VERSION} (git ${describe})")
    endif()
    # A commit or checkout appends to the HEAD log: configure again then.
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --absolute-git-dir
                    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE git_dir
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
    if(rc EQUAL 0 AND EXISTS ${git_dir}/logs/HEAD)
      set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${git_dir}/logs/HEAD)
    endif()
  endif()
endif()
message(STATUS "svmkit version ${SVMKIT_VERSION_FULL}")
