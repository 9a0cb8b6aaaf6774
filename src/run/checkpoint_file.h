// Training checkpoints as files: one torch.save-compatible file of sections ({"state_dict": model,
// "ema_state_dict", "optimizer", "meta", ...}), written atomically; Python reads it with
// torch.load(weights_only=True) and ckpt["state_dict"] loads into torchvision. Every mode reads them (eval
// and predict take their weights from the newest one); what the sections mean is train/train_state.h's.
#pragma once
#include <string>
#include <vector>

#include "util/torch_file.h"

namespace convnets {

void save_checkpoint(const std::string& path, const TensorSections& sections,
                     const WeightsMetadata& metadata = {});
TensorSections load_checkpoint(const std::string& path);
const NamedTensors& section(const TensorSections& sections, const std::string& name);  // throws naming it
const NamedTensors* find_section(const TensorSections& sections,
                                 const std::string& name);  // nullptr if absent

// checkpoint_e<epochs>_u<updates>.pt: names that sort in training order.
std::string checkpoint_file_name(int64_t epochs_done, int64_t updates);
// Every checkpoint_*.pt in `directory`, newest first (empty when the directory does not exist).
std::vector<std::string> checkpoints_newest_first(const std::string& directory);

}  // namespace convnets
