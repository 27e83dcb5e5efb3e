{
  "targets": [
    {
      # The Node-API addon: marshalling, clone3 launcher, pidfd watcher.
      "target_name": "exec2_native",
      "sources": ["native/addon.cc", "native/spawn.c"],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags": [
        "-O2", "-Wall", "-Wextra", "-fstack-protector-strong",
        "-D_FORTIFY_SOURCE=2", "-fno-strict-aliasing"
      ],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-std=gnu++17", "-fexceptions"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++14", "-std=gnu++1y"],
      "ldflags": ["-Wl,-z,relro", "-Wl,-z,now", "-Wl,-z,noexecstack"]
    },
    {
      # pid 1 of every task. Static and libc-free (native/rawsys.h says why),
      # so that nothing in the task's world (LD_* variables, its libraries,
      # its unveil set) can affect it, and so that it starts in microseconds.
      "target_name": "exec2-init",
      "type": "executable",
      "sources": ["native/init.c"],
      "cflags": [
        "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wformat=2",
        "-fno-tree-loop-distribute-patterns", "-fno-asynchronous-unwind-tables",
        "-fstack-protector-strong", "-fstack-clash-protection",
        "-fno-strict-aliasing"
      ],
      "cflags!": ["-fPIC", "-pthread", "-fno-omit-frame-pointer"],
      "conditions": [
        ["target_arch=='x64'", {
          "cflags": ["-fcf-protection=full", "-mstack-protector-guard=global"]
        }],
        ["target_arch=='arm64'", { "cflags": ["-mbranch-protection=standard"] }]
      ],
      "ldflags": [
        "-static", "-nostdlib", "-nostartfiles",
        "-Wl,-z,relro", "-Wl,-z,now", "-Wl,-z,noexecstack"
      ],
      "ldflags!": ["-rdynamic", "-pthread"],
      "libraries": ["-lgcc"]
    }
  ]
}
