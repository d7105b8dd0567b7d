/* pw/paths.h: where a program finds its data files: next to itself when installed, in the
 * source tree when it runs from the build tree.
 *
 * An installed program (PREFIX/bin/policy-worker) reads PREFIX/share/policy-worker/...,
 * where PREFIX is found from the program's own path (/proc/self/exe), so a tree copied
 * or installed anywhere (DESTDIR, a container image, a .deb) finds its own files and never
 * a source-tree path.  Only a program whose directory is the build tree's bin/ (the
 * directory CMake writes the programs to) uses the source tree's schemas/. */
#ifndef PW_PATHS_H
#define PW_PATHS_H

/* The default schema directory (worker.schemas.dir, policyctl --schemas): an absolute path,
 * computed once; valid for the life of the process.  Thread-safe. */
const char *pw_paths_schemas_dir(void);

#endif
