/* runner.h - the per-file runner process.
 *
 * The scheduler spawns `provium __runner SCHEDULER_PID` with a socketpair on
 * fd 3 (see ctl.h for the conversation). The runner owns one lua_State, loads
 * the file, sends its plan, runs every test in order, emitting test events as
 * frames on fd 3, and exits 0 after "done". Anything else (a signal, os.exit,
 * running out of memory) is a crash the scheduler reports for it.
 */
#ifndef PV_RUNNER_H
#define PV_RUNNER_H

#define PV_RUNNER_FD 3

int pv_runner_main(int argc, char **argv);

#endif
