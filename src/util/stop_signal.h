// Graceful stop: the first SIGTERM or SIGINT sets a flag the training loop polls (it then finishes the step,
// checkpoints and exits 0); a second one gets the default action, so Ctrl-C twice still kills at once.
#pragma once

namespace convnets {

void install_stop_handlers();
bool stop_requested();
int stop_signal_number();   // the signal received, 0 if none

}  // namespace convnets
